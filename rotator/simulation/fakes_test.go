package simulation

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/spapi/amazon"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The fakes are only worth the invariants checked against them if they behave like the services.

func fakeSim(t *testing.T) (*sim, *appSide) {
	t.Helper()
	tr := &tracer{}
	s := newSim(7, tr)
	tr.clk = s.clk
	return s, s.sides[0]
}

func rec(side *appSide, value string, exp time.Time) vault.Record {
	return vault.Record{ClientID: side.app.ClientID, ClientSecret: secret.New(value), ExpiresAt: exp}
}

func TestFakeVaultStaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	exp := simStart.Add(180 * day)
	tests := []struct {
		name        string
		run         func(v fakeVault, side *appSide) error
		wantErr     error
		wantCurrent string // secret value in AWSCURRENT afterwards
		wantPrev    string // version id holding AWSPREVIOUS, "" for none
		wantPending string // version id returned by Pending, "" for none
	}{
		{"same token and bytes is a no-op", func(v fakeVault, side *appSide) error {
			if err := v.Stage(ctx, side.app.SecretID, "t1", rec(side, "new", exp)); err != nil {
				return err
			}
			return v.Stage(ctx, side.app.SecretID, "t1", rec(side, "new", exp))
		}, nil, "", "", "t1"},
		{"same token, other bytes conflicts", func(v fakeVault, side *appSide) error {
			if err := v.Stage(ctx, side.app.SecretID, "t1", rec(side, "new", exp)); err != nil {
				return err
			}
			return v.Stage(ctx, side.app.SecretID, "t1", rec(side, "planted", exp))
		}, vault.ErrTokenConflict, "", "", "t1"},
		{"promote hands AWSPREVIOUS to the old current", func(v fakeVault, side *appSide) error {
			if err := v.Stage(ctx, side.app.SecretID, "t1", rec(side, "new", exp)); err != nil {
				return err
			}
			return v.Promote(ctx, side.app.SecretID, "t1", "initial-0")
		}, nil, "new", "initial-0", ""},
		{"a second stage moves AWSPENDING", func(v fakeVault, side *appSide) error {
			for _, tok := range []string{"t1", "t2"} {
				if err := v.Stage(ctx, side.app.SecretID, tok, rec(side, tok, exp)); err != nil {
					return err
				}
			}
			return nil
		}, nil, "", "", "t2"},
		{"pending on the current version does not count", func(v fakeVault, side *appSide) error {
			if err := v.Stage(ctx, side.app.SecretID, "t1", rec(side, "new", exp)); err != nil {
				return err
			}
			if err := v.Promote(ctx, side.app.SecretID, "t1", "initial-0"); err != nil {
				return err
			}
			return v.Stage(ctx, side.app.SecretID, "t1", rec(side, "new", exp))
		}, nil, "new", "initial-0", ""},
		{"clear pending", func(v fakeVault, side *appSide) error {
			if err := v.Stage(ctx, side.app.SecretID, "t1", rec(side, "new", exp)); err != nil {
				return err
			}
			return v.ClearPending(ctx, side.app.SecretID, "t1")
		}, nil, "", "", ""},
		{"unknown secret", func(v fakeVault, _ *appSide) error {
			_, err := v.Current(ctx, "lwa/nope")
			return err
		}, vault.ErrNotFound, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, side := fakeSim(t)
			initial := side.amz.secret(0).Value.Reveal()
			v := fakeVault{s}
			if err := tc.run(v, side); !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			cur, err := v.Current(ctx, side.app.SecretID)
			want := tc.wantCurrent
			if want == "" {
				want = initial
			}
			if err != nil || cur.Record.ClientSecret.Reveal() != want {
				t.Errorf("AWSCURRENT holds %s (%v), want %s", side.describe(cur.Record.ClientSecret.Reveal()), err, want)
			}
			prev := ""
			if p := side.vault.holder(vault.StagePrevious); p != nil {
				prev = p.id
			}
			if prev != tc.wantPrev {
				t.Errorf("AWSPREVIOUS on %q, want %q", prev, tc.wantPrev)
			}
			p, ok, err := v.Pending(ctx, side.app.SecretID)
			if err != nil || (ok && p.ID != tc.wantPending) || (!ok && tc.wantPending != "") {
				t.Errorf("Pending = %q, %v, %v; want %q", p.ID, ok, err, tc.wantPending)
			}
		})
	}
}

func TestFakeAmazon(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, side := fakeSim(t)
	lwa, sp := fakeLWA{s}, fakeSPAPI{s}
	first := side.amz.secret(0).Value
	firstExp := side.amz.secret(0).ExpiresAt

	tok, err := lwa.Token(ctx, side.app.ClientID, first)
	if err != nil {
		t.Fatalf("Token with the initial secret: %v", err)
	}
	if _, err := lwa.Token(ctx, side.app.ClientID, secret.New("amzn1.oa2-cs.v1.planted")); !errors.Is(err, spapi.ErrInvalidClient) {
		t.Errorf("Token with an unknown secret: %v, want ErrInvalidClient", err)
	}
	if _, err := sp.RotateClientSecret(ctx, side.app.ClientID, "na", tok.AccessToken); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if _, err := sp.RotateClientSecret(ctx, side.app.ClientID, "na", tok.AccessToken); !errors.Is(err, spapi.ErrThrottled) {
		t.Errorf("second rotate within a minute: %v, want ErrThrottled", err)
	}
	now := s.clk.Now()
	want := now.Add(amazon.OldSecretLifetime)
	if firstExp.Before(want) {
		want = firstExp
	}
	if got := side.amz.secret(0).ExpiresAt; !got.Equal(want) {
		t.Errorf("old secret expires %v, want %v", got, want)
	}
	if len(side.outbox) != 1 || side.outbox[0].kind != noteNewSecret || side.outbox[0].seq != 1 {
		t.Fatalf("outbox = %+v, want one new-secret notification about secret #1", side.outbox)
	}
	s.clk.Advance(amazon.OldSecretLifetime)
	if _, err := lwa.Token(ctx, side.app.ClientID, first); !errors.Is(err, spapi.ErrInvalidClient) {
		t.Errorf("Token with the old secret after its grace: %v, want ErrInvalidClient", err)
	}
	if _, err := sp.RotateClientSecret(ctx, side.app.ClientID, "na", tok.AccessToken); !errors.Is(err, spapi.ErrUnauthorized) {
		t.Errorf("rotate with a day-old token: %v, want ErrUnauthorized", err)
	}
	tok2, err := lwa.Token(ctx, side.app.ClientID, side.amz.secret(1).Value)
	if err != nil || !side.amz.secret(1).LastAccepted.Equal(s.clk.Now()) {
		t.Fatalf("Token with the new secret: %v (validated at %v)", err, side.amz.secret(1).LastAccepted)
	}
	s.arm(side, svcSPAPI, 1, 500, true)
	side.faults[svcSPAPI].skip = 0
	if _, err := sp.RotateClientSecret(ctx, side.app.ClientID, "na", tok2.AccessToken); !errors.Is(err, spapi.ErrTransient) || side.amz.count() != 3 {
		t.Errorf("ambiguous 500: %v with %d secrets, want ErrTransient after minting a third", err, side.amz.count())
	}
}

func TestFakeQueue(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	now := simStart
	q := &queue{name: "q"}
	q.send(outgoing{body: []byte("a")}, now)
	var handles []string
	for i := range maxReceiveCount {
		got, moved := q.receive(now, 10, rng)
		if len(got) != 1 || len(moved) != 0 || got[0].ReceiveCount != i+1 {
			t.Fatalf("receive #%d = %+v, moved %d", i+1, got, len(moved))
		}
		if again, _ := q.receive(now, 10, rng); len(again) != 0 {
			t.Fatalf("message visible again during its visibility timeout")
		}
		handles = append(handles, got[0].ReceiptHandle)
		if i == 0 {
			q.changeVisibility(got[0].ReceiptHandle, time.Hour, now)
			if next := q.nextVisible(now); !next.Equal(now.Add(time.Hour)) {
				t.Fatalf("after ChangeMessageVisibility(1h) next visible at %v", next)
			}
			now = now.Add(time.Hour)
			continue
		}
		now = now.Add(visibilityTimeout)
	}
	if q.delete(handles[0]) {
		t.Errorf("an outdated receipt handle deleted the message")
	}
	got, moved := q.receive(now, 10, rng)
	if len(got) != 0 || len(moved) != 1 || len(q.dlq) != 1 || len(q.msgs) != 0 {
		t.Fatalf("sixth receive = %d messages, %d moved, dlq %d: want redrive", len(got), len(moved), len(q.dlq))
	}
	q.send(outgoing{body: []byte("b")}, now)
	got, _ = q.receive(now, 10, rng)
	if !q.delete(got[0].ReceiptHandle) || len(q.msgs) != 0 {
		t.Errorf("delete with the current handle left %d messages", len(q.msgs))
	}
}

func TestFakeFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, side := fakeSim(t)
	v := fakeVault{s}
	s.arm(side, svcVault, 2, 0, false)
	skip := side.faults[svcVault].skip
	var errs []bool
	for range skip + 3 {
		_, err := v.Current(ctx, side.app.SecretID)
		errs = append(errs, err != nil)
	}
	want := append(make([]bool, skip), true, true, false)
	if !slices.Equal(errs, want) {
		t.Errorf("calls failed %v, want %v", errs, want)
	}
	s.arm(side, svcVault, 1, 0, true)
	side.faults[svcVault].skip = 0
	st := vault.RotationState{RequestedAt: s.clk.Now(), RotationID: "r1"}
	side.vault.state = vault.RotationState{NoticedExpiry: s.clk.Now(), Attempts: 3}
	if err := v.SaveState(ctx, side.app.SecretID, st); err == nil {
		t.Fatal("ambiguous SaveState reported success")
	}
	if got := side.vault.state; !got.RequestedAt.Equal(st.RequestedAt) || got.Attempts != 3 {
		t.Errorf("after an ambiguous SaveState the state is %+v: want the new fields tagged and the old ones not untagged", got)
	}
	s.armCrash(side, 2, true)
	crashed := s.protect(func() {
		_, _ = v.Current(ctx, side.app.SecretID)
		_ = v.SaveState(ctx, side.app.SecretID, vault.RotationState{RotationID: "r2"})
		t.Error("the call after the crash point ran")
	})
	if !crashed || side.vault.state.RotationID != "r2" {
		t.Errorf("crash after effect: crashed=%v, state %+v", crashed, side.vault.state)
	}
}
