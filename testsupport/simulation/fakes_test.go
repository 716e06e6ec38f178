package simulation

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/amazon"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The fakes are only worth the invariants checked against them if they behave like the services.

// fakeSim is a single-replica seed's world (Amazon with its one rotate call a minute), before
// its run.
func fakeSim(t *testing.T) (*sim, *appSide) {
	t.Helper()
	const seed = 6
	if n, _, _, _ := drawReplicas(seed); n != 1 {
		t.Fatalf("seed %d runs %d replicas; the fakes' tests want a single-replica seed", seed, n)
	}
	tr := &tracer{}
	s := newSim(seed, tr)
	tr.clk = s.clk
	return s, s.sides[0]
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

// TestVaultFaults: fakesm's hook and the wrapper make Secrets Manager calls fail, fail after
// taking effect, and crash the process before or after them, as the schedule says.
func TestVaultFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, side := fakeSim(t)
	store := &vault.Store{SM: smAPI{s}, Clock: s.clk}
	id := side.app.SecretID
	s.arm(side, svcVault, 2, 0, false)
	skip := side.faults[svcVault].skip
	var errs []bool
	for range skip + 3 {
		_, err := store.LoadState(ctx, id)
		errs = append(errs, err != nil)
	}
	if want := append(make([]bool, skip), true, true, false); !slices.Equal(errs, want) {
		t.Errorf("calls failed %v, want %v", errs, want)
	}

	was := vault.RotationState{NoticedExpiry: s.clk.Now(), Attempts: 3}
	if err := store.SaveChanges(ctx, id, vault.RotationState{}, was); err != nil {
		t.Fatalf("SaveChanges: %v", err)
	}
	s.arm(side, svcVault, 1, 0, true)
	side.faults[svcVault].skip = 0
	st := vault.RotationState{RequestedAt: s.clk.Now(), RotationID: "r1"}
	if err := store.SaveChanges(ctx, id, was, st); err == nil {
		t.Fatal("an ambiguous SaveChanges reported success")
	}
	got, err := store.LoadState(ctx, id)
	if err != nil || !got.RequestedAt.Equal(st.RequestedAt) || got.Attempts != 3 {
		t.Errorf("after an ambiguous SaveChanges the state is %+v (%v): want the new fields tagged and the old ones not untagged", got, err)
	}

	p := s.procs[0]
	s.armCrash(side, 2, true)
	crashed := s.within(p, func() {
		_, _ = store.LoadState(ctx, id)
		_ = store.SaveChanges(ctx, id, got, vault.RotationState{RotationID: "r2"})
		t.Error("the call after the crash point ran")
	})
	if got, _ := store.LoadState(ctx, id); !crashed || !p.dead || got.RotationID != "r2" {
		t.Errorf("crash after effect: crashed=%v dead=%v, state %+v", crashed, p.dead, got)
	}

	s.restart(p, "")
	s.armCrash(side, 1, false)
	crashed = s.within(p, func() { _ = store.SaveChanges(ctx, id, got, vault.RotationState{RotationID: "r3"}) })
	if got, _ := store.LoadState(ctx, id); !crashed || got.RotationID == "r3" {
		t.Errorf("crash before effect: crashed=%v, state %+v", crashed, got)
	}
}

// TestPromotionIsSeen: a move of AWSCURRENT through the real store reaches onPromote, even when
// the call then fails or the process dies right after it.
func TestPromotionIsSeen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		ambiguous bool
		crash     bool
	}{{"clean", false, false}, {"ambiguous", true, false}, {"crash after", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, side := fakeSim(t)
			store := &vault.Store{SM: smAPI{s}, Clock: s.clk}
			snap, err := store.Read(ctx, side.app.SecretID)
			if err != nil {
				t.Fatal(err)
			}
			r := vault.Record{ClientID: side.app.ClientID, ClientSecret: secret.New("amzn1.oa2-cs.v1.planted"), ExpiresAt: simStart.Add(200 * day)}
			token := vault.TokenFor("n1")
			if err := store.StageOn(ctx, snap, token, r); err != nil {
				t.Fatal(err)
			}
			if tc.ambiguous {
				s.arm(side, svcVault, 1, 0, true)
				side.faults[svcVault].skip = 0
			}
			if tc.crash {
				s.armCrash(side, 1, true)
			}
			crashed := s.within(s.procs[0], func() { err = store.PromoteOn(ctx, snap, token) })
			if tc.crash != crashed || (tc.ambiguous || tc.crash) == (err == nil && !crashed) {
				t.Errorf("crashed=%v err=%v", crashed, err)
			}
			if side.stats.promotions != 1 || len(side.viol) == 0 || side.viol[0].inv != invVerified {
				t.Errorf("promotions %d, violations %v: want the planted promotion seen", side.stats.promotions, side.viol)
			}
		})
	}
}
