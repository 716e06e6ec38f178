package vault_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const secretName = "spapi/lwa/app-one"

// fixture is a store over the model holding one secret with sampleRecord as AWSCURRENT.
type fixture struct {
	store  *vault.Store
	fake   *fakesm.SM
	hooks  *hooks
	logs   *observer.ObservedLogs
	oldVer string
}

// hooks lets a test choose the model's fault hook after the fixture is built.
type hooks struct {
	mu sync.Mutex
	fn func(op, secretID string) fakesm.Fault
}

func (h *hooks) set(fn func(op, secretID string) fakesm.Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fn = fn
}

func (h *hooks) fault(op, secretID string) fakesm.Fault {
	h.mu.Lock()
	fn := h.fn
	h.mu.Unlock()
	if fn == nil {
		return fakesm.Fault{}
	}
	return fn(op, secretID)
}

// once runs fn the first time op is called, before that call takes effect: another writer
// acting between the store's read and its write. Calls fn makes itself pass through.
func (h *hooks) once(op string, fn func()) {
	var done atomic.Bool
	h.set(func(o, _ string) fakesm.Fault {
		if o == op && done.CompareAndSwap(false, true) {
			fn()
		}
		return fakesm.Fault{}
	})
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h := &hooks{}
	fake := fakesm.New(fakesm.Options{Fault: h.fault})
	s := &vault.Store{SM: fake, Log: zap.New(core)}
	if _, err := s.Create(context.Background(), secretName, "alias/lwa", sampleRecord()); err != nil {
		t.Fatalf("Create: %v", err)
	}
	cur, err := s.Current(context.Background(), secretName)
	if err != nil {
		t.Fatalf("Current: %v", err)
	}
	t.Cleanup(func() { assertNoLeak(t, logs) })
	return fixture{store: s, fake: fake, hooks: h, logs: logs, oldVer: cur.ID}
}

// moveCurrent moves AWSCURRENT as another replica would, straight on the model.
func (f fixture) moveCurrent(t *testing.T, to, from string) {
	t.Helper()
	if _, err := f.fake.UpdateSecretVersionStage(context.Background(), &sm.UpdateSecretVersionStageInput{SecretId: aws.String(secretName),
		VersionStage: aws.String(vault.StageCurrent), MoveToVersionId: aws.String(to), RemoveFromVersionId: aws.String(from)}); err != nil {
		t.Fatalf("moving AWSCURRENT to %s: %v", to, err)
	}
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
	if got, ok := f.fake.Value(secretName, tok); !ok || got != string(want) {
		t.Fatalf("version %s differs from Encode (len %d vs %d)", tok, len(got), len(want))
	}
	if n := f.fake.Count(fakesm.OpPutSecretValue); n != 1 {
		t.Errorf("%d puts for one notification, want 1", n)
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
			if tc.race {
				var raced atomic.Bool
				f.hooks.set(func(op, _ string) fakesm.Fault {
					if op != fakesm.OpPutSecretValue {
						return fakesm.Fault{}
					}
					if raced.CompareAndSwap(false, true) {
						if _, err := f.fake.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(secretName),
							ClientRequestToken: aws.String(tok), SecretString: aws.String(tc.raceValue()),
							VersionStages: []string{vault.StagePending}}); err != nil {
							t.Errorf("racing put: %v", err)
						}
						if tc.existsOnSame {
							return fakesm.Fault{Err: &types.ResourceExistsException{Message: aws.String("version exists")}}
						}
					}
					return fakesm.Fault{}
				})
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
			if got, _ := f.fake.Value(secretName, tok); got != string(want) {
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
	if st := f.fake.Versions(secretName)[old]; !slices.Equal(st, []string{"AWSPENDING"}) {
		t.Fatalf("re-staged version has stages %v", st)
	}
	if err := f.store.Stage(ctx, secretName, tok, newRecord()); err != nil {
		t.Fatalf("Stage new: %v", err)
	}
	st := f.fake.Versions(secretName)
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
			f.moveCurrent(t, tok, f.oldVer)
		}},
		{name: "already finished", wantMoves: 0, prepare: func(t *testing.T, f fixture, tok string) {
			if err := f.store.Promote(context.Background(), secretName, tok, f.oldVer); err != nil {
				t.Fatalf("first Promote: %v", err)
			}
		}},
		// The replica's move is counted too: 1 of its own, 2 of ours (the refused move, the clear).
		{name: "replica promotes first", wantMoves: 3, prepare: func(t *testing.T, f fixture, tok string) {
			f.hooks.once(fakesm.OpUpdateSecretVersionStage, func() { f.moveCurrent(t, tok, f.oldVer) })
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
			moves := f.fake.Count(fakesm.OpUpdateSecretVersionStage)
			if tc.prepare != nil {
				tc.prepare(t, f, tok)
				moves = f.fake.Count(fakesm.OpUpdateSecretVersionStage)
			}
			if err := f.store.Promote(ctx, secretName, tok, f.oldVer); err != nil {
				t.Fatalf("Promote: %v", err)
			}
			if got := f.fake.Count(fakesm.OpUpdateSecretVersionStage) - moves; got != tc.wantMoves {
				t.Errorf("%d UpdateSecretVersionStage calls, want %d", got, tc.wantMoves)
			}
			want := map[string][]string{tok: {"AWSCURRENT"}, f.oldVer: {"AWSPREVIOUS"}}
			for id, st := range f.fake.Versions(secretName) {
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
	f.moveCurrent(t, newer, f.oldVer)
	moves := f.fake.Count(fakesm.OpUpdateSecretVersionStage)
	if err := f.store.Promote(ctx, secretName, older, f.oldVer); !errors.Is(err, vault.ErrCurrentMoved) {
		t.Fatalf("Promote = %v, want ErrCurrentMoved", err)
	}
	if got := f.fake.Count(fakesm.OpUpdateSecretVersionStage) - moves; got != 0 {
		t.Fatalf("%d label moves after a failed compare-and-set, want 0", got)
	}
	if !slices.Contains(f.fake.Versions(secretName)[newer], vault.StageCurrent) {
		t.Fatal("AWSCURRENT left the newer version")
	}
}

func TestClearPendingAbsentIsNoop(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.store.ClearPending(context.Background(), secretName, f.oldVer); err != nil {
		t.Fatalf("ClearPending: %v", err)
	}
	if n := f.fake.Count(fakesm.OpUpdateSecretVersionStage); n != 0 {
		t.Fatalf("%d UpdateSecretVersionStage calls for an absent label", n)
	}
}
