package vault_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const secretName = "spapi/lwa/app-one"

// fixture is a store over a fake holding one secret with sampleRecord as AWSCURRENT.
type fixture struct {
	store  *vault.Store
	fake   *fakeSM
	logs   *observer.ObservedLogs
	oldVer string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	fake := newFakeSM()
	s := &vault.Store{SM: fake, Log: zap.New(core)}
	if _, err := s.Create(context.Background(), secretName, "alias/lwa", sampleRecord()); err != nil {
		t.Fatalf("Create: %v", err)
	}
	cur, err := s.Current(context.Background(), secretName)
	if err != nil {
		t.Fatalf("Current: %v", err)
	}
	t.Cleanup(func() { assertNoLeak(t, logs) })
	return fixture{store: s, fake: fake, logs: logs, oldVer: cur.ID}
}

// assertNoLeak fails if any log line, message or field, contains the plaintext secret.
func assertNoLeak(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.All() {
		if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, plain) || strings.Contains(line, newPlain) {
			t.Errorf("log line leaks a secret: %s", line)
		}
	}
}

const newPlain = "amzn1.oa2-cs.v1.NEW-SECRET-also-hidden-0987654321"

func newRecord() vault.Record {
	r := sampleRecord()
	r.ClientSecret = secret.New(newPlain)
	r.PreviousExpiresAt, r.ExpiresAt = r.ExpiresAt, r.ExpiresAt.AddDate(0, 6, 0)
	return r
}

func noLeak(t *testing.T, err error) {
	t.Helper()
	if err != nil && (strings.Contains(err.Error(), plain) || strings.Contains(err.Error(), newPlain)) {
		t.Fatalf("error leaks a secret: %v", err)
	}
}

func TestStagePutsPendingOnceWithExactBytes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tok := vault.TokenFor("notification-1")
	want, _ := vault.Encode(newRecord(), vault.FormatDefault)

	for i := range 3 { // first delivery plus two redeliveries
		if err := f.store.Stage(ctx, secretName, tok, newRecord()); err != nil {
			t.Fatalf("Stage #%d: %v", i+1, err)
		}
	}
	puts := f.fake.recordedPuts()
	if len(puts) == 0 {
		t.Fatal("no PutSecretValue")
	}
	for _, p := range puts {
		if p.token != tok || p.value != string(want) {
			t.Fatalf("put token %s value differs from Encode (len %d vs %d)", p.token, len(p.value), len(want))
		}
	}
	if len(puts) != 1 {
		t.Errorf("%d puts for one notification, want 1", len(puts))
	}
	p, ok, err := f.store.Pending(ctx, secretName)
	if err != nil || !ok || p.ID != tok || !sameRecord(p.Record, newRecord()) {
		t.Fatalf("Pending = %v, %v, %v; want version %s with the new record", p.ID, ok, err, tok)
	}
	if cur, _ := f.store.Current(ctx, secretName); cur.ID != f.oldVer {
		t.Errorf("Stage moved AWSCURRENT to %s", cur.ID)
	}
	if f.logs.FilterField(zap.String("version", tok)).Len() == 0 {
		t.Error("no log line names the staged version")
	}
}

func TestStageTokenConflict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// race makes another writer put the token between Stage's read and its put.
		race         bool
		raceValue    func() string
		existsOnSame bool
		wantErr      error
	}{
		{name: "token reused with other bytes", wantErr: vault.ErrTokenConflict},
		{name: "racing writer with other bytes", race: true, raceValue: func() string { return `{"clientId":"x","clientSecret":"y"}` }, wantErr: vault.ErrTokenConflict},
		{name: "racing writer with same bytes, AWS answers no-op", race: true, raceValue: encodedNew},
		{name: "racing writer with same bytes, AWS answers ResourceExists", race: true, raceValue: encodedNew, existsOnSame: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := context.Background()
			tok := vault.TokenFor("n-" + tc.name)
			f.fake.existsOnSame = tc.existsOnSame
			if tc.race {
				f.fake.beforePut = func() {
					f.fake.mu.Lock()
					defer f.fake.mu.Unlock()
					f.fake.secrets[secretName].addVersion(tok, tc.raceValue(), []string{"AWSPENDING"})
				}
			} else if err := f.store.Stage(ctx, secretName, tok, sampleRecord()); err != nil {
				t.Fatalf("first Stage: %v", err)
			}
			want, _ := vault.Encode(sampleRecord(), vault.FormatDefault)
			if tc.race {
				want = []byte(tc.raceValue())
			}
			err := f.store.Stage(ctx, secretName, tok, newRecord())
			noLeak(t, err)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Stage = %v, want %v", err, tc.wantErr)
			}
			if got := f.fake.value(secretName, tok); got != string(want) {
				t.Error("Stage changed the bytes another writer stored first")
			}
		})
	}
}

func encodedNew() string {
	b, _ := vault.Encode(newRecord(), vault.FormatDefault)
	return string(b)
}

func TestStageMovesPendingFromAbandonedRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	old, tok := vault.TokenFor("abandoned"), vault.TokenFor("fresh")
	if err := f.store.Stage(ctx, secretName, old, sampleRecord()); err != nil {
		t.Fatalf("Stage old: %v", err)
	}
	// The label goes missing from the old token (an operator, or ClearPending after a failed
	// verification), and the old token is then staged again by a redelivery.
	if err := f.store.ClearPending(ctx, secretName, old); err != nil {
		t.Fatalf("ClearPending: %v", err)
	}
	if err := f.store.Stage(ctx, secretName, old, sampleRecord()); err != nil {
		t.Fatalf("re-Stage old: %v", err)
	}
	if st := f.fake.stages(secretName)[old]; !slices.Equal(st, []string{"AWSPENDING"}) {
		t.Fatalf("re-staged version has stages %v", st)
	}
	if err := f.store.Stage(ctx, secretName, tok, newRecord()); err != nil {
		t.Fatalf("Stage new: %v", err)
	}
	st := f.fake.stages(secretName)
	if len(st[old]) != 0 || !slices.Equal(st[tok], []string{"AWSPENDING"}) {
		t.Fatalf("stages after second Stage = %v", st)
	}
}

func TestPromote(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// prepare runs after Stage and before Promote.
		prepare   func(t *testing.T, f fixture, tok string)
		wantMoves int
	}{
		{name: "normal", wantMoves: 2},
		{name: "crash after AWSCURRENT moved", wantMoves: 1, prepare: func(t *testing.T, f fixture, tok string) {
			f.fake.mu.Lock()
			defer f.fake.mu.Unlock()
			f.fake.secrets[secretName].attach("AWSCURRENT", tok)
		}},
		{name: "already finished", wantMoves: 0, prepare: func(t *testing.T, f fixture, tok string) {
			if err := f.store.Promote(context.Background(), secretName, tok, f.oldVer); err != nil {
				t.Fatalf("first Promote: %v", err)
			}
		}},
		{name: "replica promotes first", wantMoves: 2, prepare: func(t *testing.T, f fixture, tok string) {
			f.fake.beforeMove = func() {
				f.fake.beforeMove = nil
				f.fake.mu.Lock()
				defer f.fake.mu.Unlock()
				f.fake.secrets[secretName].attach("AWSCURRENT", tok)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := context.Background()
			tok := vault.TokenFor("n-" + tc.name)
			if err := f.store.Stage(ctx, secretName, tok, newRecord()); err != nil {
				t.Fatalf("Stage: %v", err)
			}
			moves := f.fake.count("UpdateSecretVersionStage")
			if tc.prepare != nil {
				tc.prepare(t, f, tok)
				moves = f.fake.count("UpdateSecretVersionStage")
			}
			if err := f.store.Promote(ctx, secretName, tok, f.oldVer); err != nil {
				t.Fatalf("Promote: %v", err)
			}
			if got := f.fake.count("UpdateSecretVersionStage") - moves; got != tc.wantMoves {
				t.Errorf("%d UpdateSecretVersionStage calls, want %d", got, tc.wantMoves)
			}
			want := map[string][]string{tok: {"AWSCURRENT"}, f.oldVer: {"AWSPREVIOUS"}}
			for id, st := range f.fake.stages(secretName) {
				if !slices.Equal(st, want[id]) {
					t.Errorf("version %s stages %v, want %v", id, st, want[id])
				}
			}
		})
	}
}

func TestPromoteIsACompareAndSet(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	newer, older := vault.TokenFor("newer"), vault.TokenFor("older")
	for _, tok := range []string{newer, older} {
		if err := f.store.Stage(ctx, secretName, tok, newRecord()); err != nil {
			t.Fatal(err)
		}
	}
	// Another replica promoted newer after we read AWSCURRENT on the old version.
	f.fake.mu.Lock()
	f.fake.secrets[secretName].attach("AWSCURRENT", newer)
	f.fake.mu.Unlock()
	moves := f.fake.count("UpdateSecretVersionStage")
	if err := f.store.Promote(ctx, secretName, older, f.oldVer); !errors.Is(err, vault.ErrCurrentMoved) {
		t.Fatalf("Promote = %v, want ErrCurrentMoved", err)
	}
	if got := f.fake.count("UpdateSecretVersionStage") - moves; got != 0 {
		t.Fatalf("%d label moves after a failed compare-and-set, want 0", got)
	}
	if !slices.Contains(f.fake.stages(secretName)[newer], "AWSCURRENT") {
		t.Fatal("AWSCURRENT left the newer version")
	}
}

func TestClearPendingAbsentIsNoop(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.store.ClearPending(context.Background(), secretName, f.oldVer); err != nil {
		t.Fatalf("ClearPending: %v", err)
	}
	if n := f.fake.count("UpdateSecretVersionStage"); n != 0 {
		t.Fatalf("%d UpdateSecretVersionStage calls for an absent label", n)
	}
}
