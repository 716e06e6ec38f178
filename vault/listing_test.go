package vault_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

var accessDenied = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized", Fault: smithy.FaultClient}

// fleet is a model holding n applications' secrets (lwa/app-000 …) and some foreign ones,
// behind a listing that can be made to lag.
type fleet struct {
	fake  *fakesm.SM
	lag   *lagging
	clk   *fakeclock.Fake
	store *vault.Store
	logs  *observer.ObservedLogs
	names []string
	arns  []string
	fault atomic.Pointer[func(op string) fakesm.Fault]
}

func newFleet(t *testing.T, n int, foreign ...string) *fleet {
	t.Helper()
	fl := &fleet{clk: fakeclock.New(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))}
	fl.fake = fakesm.New(fakesm.Options{Fault: func(op, _ string) fakesm.Fault {
		if fn := fl.fault.Load(); fn != nil {
			return (*fn)(op)
		}
		return fakesm.Fault{}
	}})
	fl.lag = &lagging{SM: fl.fake, last: map[string]*sm.ListSecretsOutput{}}
	core, logs := observer.New(zapcore.DebugLevel)
	fl.logs = logs
	fl.store = &vault.Store{SM: fl.lag, Log: zap.New(core), Clock: fl.clk}
	ctx := context.Background()
	for i := range n {
		name := fmt.Sprintf("lwa/app-%03d", i)
		arn, err := fl.store.Create(ctx, name, ourKeyID, sampleRecord())
		if err != nil {
			t.Fatal(err)
		}
		fl.names, fl.arns = append(fl.names, name), append(fl.arns, arn)
	}
	for _, name := range foreign {
		if _, err := fl.store.Create(ctx, name, "", sampleRecord()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { assertNoLeak(t, logs) })
	return fl
}

func (fl *fleet) failOn(op string, err error) {
	fn := func(o string) fakesm.Fault {
		if o == op {
			return fakesm.Fault{Err: err}
		}
		return fakesm.Fault{}
	}
	fl.fault.Store(&fn)
}

// other is another writer over the same model (a replica, an operator): its writes are not the
// fleet store's own.
func (fl *fleet) other() *vault.Store { return &vault.Store{SM: fl.fake} }

// lagging is the model behind a listing that does not show the latest changes, as AWS documents
// ListSecrets may not: while stale is set, ListSecrets answers what it answered last for the
// same input.
type lagging struct {
	*fakesm.SM
	stale atomic.Bool
	mu    sync.Mutex
	last  map[string]*sm.ListSecretsOutput
}

func (l *lagging) ListSecrets(ctx context.Context, in *sm.ListSecretsInput, opts ...func(*sm.Options)) (*sm.ListSecretsOutput, error) {
	key := fmt.Sprint(in.Filters, aws.ToString(in.NextToken))
	if l.stale.Load() {
		l.mu.Lock()
		out, ok := l.last[key]
		l.mu.Unlock()
		if ok {
			return out, nil
		}
	}
	out, err := l.SM.ListSecrets(ctx, in, opts...)
	if err == nil {
		l.mu.Lock()
		l.last[key] = out
		l.mu.Unlock()
	}
	return out, err
}

// sameSnapshot compares two snapshots field by field (records by value, label lists as sets).
func sameSnapshot(a, b vault.Snapshot) error {
	sorted := func(m map[string][]string) map[string][]string {
		out := map[string][]string{}
		for k, v := range m {
			out[k] = slices.Sorted(slices.Values(v))
		}
		return out
	}
	sameVersion := func(x, y vault.Version) bool {
		return x.ID == y.ID && sameRecord(x.Record, y.Record) &&
			slices.Equal(slices.Sorted(slices.Values(x.Stages)), slices.Sorted(slices.Values(y.Stages)))
	}
	switch {
	case a.SecretID != b.SecretID:
		return fmt.Errorf("secret id %s, %s", a.SecretID, b.SecretID)
	case !sameVersion(a.Current, b.Current):
		return fmt.Errorf("current %s %v, %s %v", a.Current.ID, a.Current.Stages, b.Current.ID, b.Current.Stages)
	case (a.Pending == nil) != (b.Pending == nil) || (a.Pending != nil && !sameVersion(*a.Pending, *b.Pending)):
		return fmt.Errorf("pending %+v, %+v", a.Pending, b.Pending)
	case !maps.EqualFunc(sorted(a.Labels), sorted(b.Labels), slices.Equal):
		return fmt.Errorf("labels %v, %v", a.Labels, b.Labels)
	case a.State != b.State:
		return fmt.Errorf("state %+v, %+v", a.State, b.State)
	case a.KMSKeyID != b.KMSKeyID || a.OtherTags != b.OtherTags:
		return fmt.Errorf("key %q tags %d, key %q tags %d", a.KMSKeyID, a.OtherTags, b.KMSKeyID, b.OtherTags)
	}
	return nil
}

// assertSameAsRead checks each listed snapshot against a Read of the same id by a store of its
// own: the same facts, and marked as listed where Read's is not.
func assertSameAsRead(t *testing.T, sm vault.SecretsManager, got map[string]vault.Snapshot) {
	t.Helper()
	fresh := &vault.Store{SM: sm}
	for id, snap := range got {
		want, err := fresh.Read(context.Background(), id)
		if err != nil {
			t.Errorf("Read(%s): %v", id, err)
			continue
		}
		if err := sameSnapshot(snap, want); err != nil {
			t.Errorf("ReadListed(%s) differs from Read: %v", id, err)
		}
		if !snap.Listed || want.Listed {
			t.Errorf("%s: Listed is %v from ReadListed and %v from Read, want true and false", id, snap.Listed, want.Listed)
		}
	}
}

func TestReadListedCosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ids  func(fl *fleet) []string
		// foreign secrets beside the fleet
		foreign []string
		// want: snapshots; listCold, batchCold: calls on a cold cache; listWarm on a warm one.
		want, listCold, batchCold, listWarm int
	}{
		{"names", func(fl *fleet) []string { return fl.names }, []string{"other/a", "other/b"}, 250, 3, 13, 3},
		{"full ARNs", func(fl *fleet) []string { return fl.arns }, nil, 250, 3, 13, 3},
		{"ARNs without the random suffix", func(fl *fleet) []string {
			var out []string
			for _, a := range fl.arns {
				out = append(out, a[:len(a)-7])
			}
			return out
		}, nil, 250, 3, 13, 3},
		{"names, ARNs and suffix-less ARNs mixed", func(fl *fleet) []string {
			out := slices.Clone(fl.names)
			for i := 0; i < len(out); i += 3 {
				out[i] = fl.arns[i]
			}
			for i := 1; i < len(out); i += 3 {
				out[i] = fl.arns[i][:len(fl.arns[i])-7]
			}
			return out
		}, nil, 250, 3, 13, 3},
		// Foreign secrets sharing the prefix are listed, never matched.
		{"foreign secrets with the fleet's prefix", func(fl *fleet) []string { return fl.names },
			[]string{"lwa/app-foreign-1", "lwa/app-foreign-2"}, 250, 3, 13, 3},
		// No common prefix: every secret in the account is listed (250 + 60 → 4 pages).
		{"no common name prefix", func(fl *fleet) []string { return append(slices.Clone(fl.names), "zz/other-000") },
			zzForeign(60), 251, 4, 13, 4},
		// An id given twice is one snapshot; a secret named two ways is one per id. The
		// thirty share the prefix lwa/app-0, so one page lists them.
		{"repeated ids", func(fl *fleet) []string { return append(slices.Clone(fl.names[:30]), fl.names[0], fl.arns[1]) },
			nil, 31, 1, 2, 1},
		{"ids not listed are left out", func(fl *fleet) []string {
			return append(slices.Clone(fl.names[:12]), "lwa/app-missing", "arn:aws:secretsmanager:eu-west-1:1:secret:lwa/app-000-AbCdEf")
		},
			nil, 12, 3, 1, 3},
		// A listing would cost as much as reading each: the caller reads them.
		{"fewer than ten ids: no call", func(fl *fleet) []string { return fl.names[:9] }, nil, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fl := newFleet(t, 250, tc.foreign...)
			ids := tc.ids(fl)
			ctx := context.Background()
			for _, pass := range []string{"cold", "warm"} {
				fl.fake.ResetCalls()
				got, err := fl.store.ReadListed(ctx, ids)
				if err != nil {
					t.Fatalf("%s ReadListed: %v", pass, err)
				}
				if len(got) != tc.want {
					t.Errorf("%s: %d snapshots, want %d", pass, len(got), tc.want)
				}
				for id := range got {
					if !slices.Contains(ids, id) {
						t.Errorf("%s: snapshot keyed %q, which is not an id given", pass, id)
					}
				}
				calls := fl.fake.Calls()
				wantList, wantBatch := tc.listCold, tc.batchCold
				if pass == "warm" {
					wantList, wantBatch = tc.listWarm, 0
				}
				if calls[fakesm.OpListSecrets] != wantList || calls[fakesm.OpBatchGetSecretValue] != wantBatch || len(calls) > 2 {
					t.Errorf("%s calls = %v, want %d ListSecrets and %d BatchGetSecretValue only", pass, calls, wantList, wantBatch)
				}
				assertSameAsRead(t, fl.fake, got)
			}
		})
	}
}

func zzForeign(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("zz/other-%03d", i))
	}
	return out
}

// TestReadListedSnapshots: what each kind of secret gives, and what is left out for Read.
func TestReadListedSnapshots(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 12)
	ctx := context.Background()
	s, other := fl.store, fl.other()
	// app-000 has a pending version, staged by another writer.
	snap, err := s.Read(ctx, fl.names[0])
	if err != nil {
		t.Fatal(err)
	}
	tok := vault.TokenFor("listing-pending")
	if err := other.StageOn(ctx, snap, tok, newRecord()); err != nil {
		t.Fatal(err)
	}
	// app-001 carries rotation state and tags of its own.
	st := vault.RotationState{RequestedAt: time.Date(2026, 8, 1, 9, 0, 0, 5, time.UTC), Attempts: 2, RotationID: "r-1"}
	if err := other.SaveChanges(ctx, fl.names[1], vault.RotationState{}, st); err != nil {
		t.Fatal(err)
	}
	if _, err := fl.fake.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String(fl.names[1]), Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("x")}}}); err != nil {
		t.Fatal(err)
	}
	// app-002 holds a value that does not decode, app-003 a daemon tag that does not.
	if _, err := fl.fake.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(fl.names[2]), SecretString: aws.String("not json")}); err != nil {
		t.Fatal(err)
	}
	if _, err := fl.fake.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String(fl.names[3]), Tags: []types.Tag{{Key: aws.String(vault.TagAttempts), Value: aws.String("many")}}}); err != nil {
		t.Fatal(err)
	}
	// lwa/app-empty has no AWSCURRENT.
	if _, err := fl.fake.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("lwa/app-empty")}); err != nil {
		t.Fatal(err)
	}
	ids := append(slices.Clone(fl.names), "lwa/app-empty")
	fl.fake.ResetCalls()
	got, err := s.ReadListed(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Concat(fl.names[:2], fl.names[4:])
	if !slices.Equal(slices.Sorted(maps.Keys(got)), want) {
		t.Fatalf("snapshots of %v, want %v", slices.Sorted(maps.Keys(got)), want)
	}
	// One listing, one batch for the listed current versions not read before (app-000's was),
	// one read of the pending one.
	if calls := fl.fake.Calls(); calls[fakesm.OpListSecrets] != 1 || calls[fakesm.OpBatchGetSecretValue] != 1 || calls[fakesm.OpGetSecretValue] != 1 || len(calls) != 3 {
		t.Errorf("calls = %v, want 1 ListSecrets, 1 BatchGetSecretValue, 1 GetSecretValue", calls)
	}
	if p := got[fl.names[0]].Pending; p == nil || p.ID != tok || !sameRecord(p.Record, newRecord()) {
		t.Errorf("pending of %s = %+v, want %s", fl.names[0], p, tok)
	}
	if g := got[fl.names[1]]; g.State != st || g.OtherTags != 1 || g.KMSKeyID != ourKeyID {
		t.Errorf("%s: state %+v, %d tags of its own, key %q", fl.names[1], g.State, g.OtherTags, g.KMSKeyID)
	}
	assertSameAsRead(t, fl.fake, got)
	// What was left out, Read reports.
	for _, id := range []string{fl.names[2], fl.names[3], "lwa/app-empty"} {
		if _, err := s.Read(ctx, id); err == nil {
			t.Errorf("Read(%s) succeeded; ReadListed left it out", id)
		}
	}
}

// TestListedSnapshotsNeverMissTheStoresOwnWrites: the listing lags (it answers what it did
// before the write), and for ten minutes after any write the Store made to a secret, that
// secret is left out for the caller's Read rather than served from the listing.
func TestListedSnapshotsNeverMissTheStoresOwnWrites(t *testing.T) {
	t.Parallel()
	tok := vault.TokenFor("own-write")
	stage := func(t *testing.T, s *vault.Store, snap vault.Snapshot) {
		t.Helper()
		if err := s.StageOn(context.Background(), snap, tok, newRecord()); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// prepare is another writer's work before the listing; write is the Store's after it.
		prepare func(t *testing.T, fl *fleet, snap vault.Snapshot)
		write   func(t *testing.T, fl *fleet, snap vault.Snapshot)
		// wantLeftOut: the secret is missing from the listed answer before ten minutes pass.
		wantLeftOut bool
	}{
		{name: "StageOn", wantLeftOut: true,
			write: func(t *testing.T, fl *fleet, snap vault.Snapshot) { stage(t, fl.store, snap) }},
		{name: "PromoteOn", wantLeftOut: true,
			prepare: func(t *testing.T, fl *fleet, snap vault.Snapshot) { stage(t, fl.other(), snap) },
			write: func(t *testing.T, fl *fleet, snap vault.Snapshot) {
				if err := fl.store.PromoteOn(context.Background(), snap, tok); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "ClearPendingOn", wantLeftOut: true,
			prepare: func(t *testing.T, fl *fleet, snap vault.Snapshot) { stage(t, fl.other(), snap) },
			write: func(t *testing.T, fl *fleet, snap vault.Snapshot) {
				if err := fl.store.ClearPendingOn(context.Background(), snap, tok, false); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "SaveChanges", wantLeftOut: true,
			write: func(t *testing.T, fl *fleet, snap vault.Snapshot) {
				if err := fl.store.SaveChanges(context.Background(), snap.SecretID, snap.State, vault.RotationState{Attempts: 1}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "ClearRequest", wantLeftOut: true,
			write: func(t *testing.T, fl *fleet, snap vault.Snapshot) {
				if err := fl.store.ClearRequest(context.Background(), snap.SecretID); err != nil {
					t.Fatal(err)
				}
			}},
		// The call failed, but a lost answer may hide a write that happened.
		{name: "a failed write", wantLeftOut: true,
			write: func(t *testing.T, fl *fleet, snap vault.Snapshot) {
				fl.failOn(fakesm.OpTagResource, &types.InternalServiceError{Message: aws.String("timeout")})
				if err := fl.store.SaveChanges(context.Background(), snap.SecretID, snap.State, vault.RotationState{Attempts: 1}); err == nil {
					t.Fatal("SaveChanges succeeded through the fault")
				}
			}},
		// Nothing to save makes no call and keeps the secret on the listing.
		{name: "a save that changes nothing", wantLeftOut: false,
			write: func(t *testing.T, fl *fleet, snap vault.Snapshot) {
				if err := fl.store.SaveChanges(context.Background(), snap.SecretID, snap.State, snap.State); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fl := newFleet(t, 12)
			ctx := context.Background()
			id := fl.names[0]
			if tc.prepare != nil {
				snap, err := fl.store.Read(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				tc.prepare(t, fl, snap)
			}
			if got, err := fl.store.ReadListed(ctx, fl.names); err != nil || len(got) != 12 {
				t.Fatalf("the listing before the write: %d snapshots, %v", len(got), err)
			}
			snap, err := fl.store.Read(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			tc.write(t, fl, snap)
			fl.fault.Store(nil)
			fl.lag.stale.Store(true) // the listing does not show the write yet

			fl.clk.Advance(10*time.Minute - time.Second)
			got, err := fl.store.ReadListed(ctx, fl.names)
			if err != nil {
				t.Fatal(err)
			}
			if _, listed := got[id]; listed == tc.wantLeftOut || len(got) != 12-map[bool]int{true: 1, false: 0}[tc.wantLeftOut] {
				t.Fatalf("9m59s after the write: %s listed %v among %d snapshots; want left out %v", id, listed, len(got), tc.wantLeftOut)
			}
			fl.clk.Advance(time.Second)
			if got, err = fl.store.ReadListed(ctx, fl.names); err != nil || len(got) != 12 {
				t.Fatalf("ten minutes after the write: %d snapshots, %v; want every secret listed again", len(got), err)
			}
		})
	}
}

// TestAWriteDuringTheListingKeepsTheSecretOut: the listing began before the Store's write, so
// it may not show it, even though the write came first in no order the Store can see.
func TestAWriteDuringTheListingKeepsTheSecretOut(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 12)
	ctx := context.Background()
	var once atomic.Bool
	fn := func(op string) fakesm.Fault {
		if op == fakesm.OpListSecrets && once.CompareAndSwap(false, true) {
			if err := fl.store.ClearRequest(ctx, fl.names[4]); err != nil {
				t.Errorf("ClearRequest: %v", err)
			}
		}
		return fakesm.Fault{}
	}
	fl.fault.Store(&fn)
	got, err := fl.store.ReadListed(ctx, fl.names)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[fl.names[4]]; ok || len(got) != 11 {
		t.Fatalf("snapshots of %v, want all but %s", slices.Sorted(maps.Keys(got)), fl.names[4])
	}
}

// TestReadListedLeavesOutACurrentThatMoved: AWSCURRENT moves between the listing and the batch;
// the batch's value is of another version than the labels say, so the secret is left for Read.
func TestReadListedLeavesOutACurrentThatMoved(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 10)
	ctx := context.Background()
	other := fl.other()
	var once atomic.Bool
	fn := func(op string) fakesm.Fault {
		if op == fakesm.OpBatchGetSecretValue && once.CompareAndSwap(false, true) {
			snap, err := other.Read(ctx, fl.names[1])
			if err == nil {
				tok := vault.TokenFor("moved")
				if err = other.StageOn(ctx, snap, tok, newRecord()); err == nil {
					err = other.PromoteOn(ctx, snap, tok)
				}
			}
			if err != nil {
				t.Errorf("moving AWSCURRENT: %v", err)
			}
		}
		return fakesm.Fault{}
	}
	fl.fault.Store(&fn)
	got, err := fl.store.ReadListed(ctx, fl.names)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[fl.names[1]]; ok || len(got) != 9 {
		t.Fatalf("snapshots of %v, want all but %s", slices.Sorted(maps.Keys(got)), fl.names[1])
	}
	if snap, err := fl.store.Read(ctx, fl.names[1]); err != nil || !sameRecord(snap.Current.Record, newRecord()) {
		t.Fatalf("Read after the move: %v", err)
	}
}

// TestReadListedPrunesTheCache: a version that lost its labels is forgotten, so one labelled
// again later is read again rather than trusted from memory.
func TestReadListedPrunesTheCache(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 10)
	ctx := context.Background()
	id := fl.names[0]
	snap, err := fl.store.Read(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	tok := vault.TokenFor("pruned")
	if err := fl.store.StageOn(ctx, snap, tok, newRecord()); err != nil {
		t.Fatal(err)
	}
	fl.clk.Advance(10 * time.Minute) // past the wait after the Store's own write
	move := func(in *sm.UpdateSecretVersionStageInput) {
		in.SecretId, in.VersionStage = aws.String(id), aws.String(vault.StagePending)
		if _, err := fl.fake.UpdateSecretVersionStage(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	move(&sm.UpdateSecretVersionStageInput{RemoveFromVersionId: aws.String(tok)})
	if _, err := fl.store.ReadListed(ctx, fl.names); err != nil {
		t.Fatal(err)
	}
	move(&sm.UpdateSecretVersionStageInput{MoveToVersionId: aws.String(tok)})
	fl.fake.ResetCalls()
	got, err := fl.store.ReadListed(ctx, fl.names)
	if err != nil || got[id].Pending == nil || got[id].Pending.ID != tok {
		t.Fatalf("ReadListed = %+v, %v; want the pending version back", got[id].Pending, err)
	}
	if n := fl.fake.Count(fakesm.OpGetSecretValue); n != 1 {
		t.Errorf("%d GetSecretValue for the relabelled version, want 1: the cache kept an unlabelled version", n)
	}
}

// TestListingDenied: a refused ListSecrets is ErrListDenied, warned about once and remembered, so
// later listings cost no call; a refused BatchGetSecretValue alone falls back to GetSecretValue.
func TestListingDenied(t *testing.T) {
	t.Parallel()
	t.Run("ListSecrets", func(t *testing.T) {
		t.Parallel()
		fl := newFleet(t, 12)
		fl.failOn(fakesm.OpListSecrets, accessDenied)
		ctx := context.Background()
		calls := []func() error{
			func() error { _, err := fl.store.ReadListed(ctx, fl.names); return err },
			func() error { _, err := fl.store.Requests(ctx, fl.names); return err },
			func() error { _, err := fl.store.ReadListed(ctx, fl.names); return err },
		}
		for i, call := range calls {
			err := call()
			var api smithy.APIError
			if !errors.Is(err, vault.ErrListDenied) || !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" {
				t.Errorf("call %d = %v, want ErrListDenied wrapping AccessDeniedException", i, err)
			}
		}
		// DescribeAll describes each secret instead.
		fl.fake.ResetCalls()
		infos, errs := fl.store.DescribeAll(ctx, fl.names)
		if n := fl.fake.Count(fakesm.OpDescribeSecret); n != 12 || errors.Join(errs...) != nil || infos[11].Name != fl.names[11] {
			t.Errorf("DescribeAll after the refusal: %d DescribeSecret, errors %v, last %+v; want 12 clean", n, errors.Join(errs...), infos[11])
		}
		if n := fl.fake.Count(fakesm.OpListSecrets); n != 0 {
			t.Errorf("%d ListSecrets calls after the first refusal, want 0: the refusal must be remembered", n)
		}
		if n := fl.logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
			t.Errorf("%d warnings, want 1", n)
		}
		// Read still works: the caller's fallback.
		if _, err := fl.store.Read(ctx, fl.names[0]); err != nil {
			t.Errorf("Read after the refusal: %v", err)
		}
	})
	t.Run("BatchGetSecretValue", func(t *testing.T) {
		t.Parallel()
		fl := newFleet(t, 45)
		fl.failOn(fakesm.OpBatchGetSecretValue, accessDenied)
		ctx := context.Background()
		got, err := fl.store.ReadListed(ctx, fl.names[:30])
		if err != nil || len(got) != 30 {
			t.Fatalf("ReadListed = %d snapshots, %v; want 30", len(got), err)
		}
		calls := fl.fake.Calls()
		if calls[fakesm.OpBatchGetSecretValue] != 1 || calls[fakesm.OpGetSecretValue] != 30 || calls[fakesm.OpListSecrets] != 1 {
			t.Errorf("calls = %v, want 1 refused batch, then 30 GetSecretValue beside 1 ListSecrets", calls)
		}
		assertSameAsRead(t, fl.fake, got)
		fl.fake.ResetCalls()
		if got, err = fl.store.ReadListed(ctx, fl.names); err != nil || len(got) != 45 {
			t.Fatalf("second ReadListed = %d snapshots, %v", len(got), err)
		}
		if calls := fl.fake.Calls(); calls[fakesm.OpBatchGetSecretValue] != 0 || calls[fakesm.OpGetSecretValue] != 15 {
			t.Errorf("second ReadListed calls = %v, want no batch and 15 GetSecretValue", calls)
		}
		if n := fl.logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
			t.Errorf("%d warnings, want 1", n)
		}
		if _, err := fl.store.Requests(ctx, fl.names); err != nil {
			t.Errorf("Requests after a refused batch: %v; listing is still allowed", err)
		}
	})
	t.Run("a client without listing", func(t *testing.T) {
		t.Parallel()
		fl := newFleet(t, 10)
		s := &vault.Store{SM: describeOnly{fl.fake}}
		if _, err := s.ReadListed(context.Background(), fl.names); !errors.Is(err, vault.ErrListDenied) {
			t.Errorf("ReadListed over a client without ListSecrets = %v, want ErrListDenied", err)
		}
		if _, err := s.Requests(context.Background(), fl.names); !errors.Is(err, vault.ErrListDenied) {
			t.Errorf("Requests over a client without ListSecrets = %v, want ErrListDenied", err)
		}
	})
}

// describeOnly hides the listing calls of the model.
type describeOnly struct{ vault.SecretsManager }

func TestRequests(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 250)
	ctx := context.Background()
	at := time.Date(2026, 8, 3, 10, 0, 0, 0, time.UTC)
	request := func(id string, tags ...types.Tag) {
		t.Helper()
		if _, err := fl.fake.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String(id), Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	valid := func(at time.Time) []types.Tag {
		rt, err := vault.RequestTags(vault.RotationRequest{At: at, By: "ops@host"})
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	request(fl.names[7], valid(at)...)
	request(fl.names[120], valid(at.Add(time.Minute))...)
	request(fl.names[249], types.Tag{Key: aws.String(vault.TagRequestAt), Value: aws.String("yesterday")})
	// A served request, whose tags are still there, is returned too: the caller judges.
	if err := fl.other().SaveChanges(ctx, fl.names[200], vault.RotationState{}, vault.RotationState{ServedRequest: at}); err != nil {
		t.Fatal(err)
	}
	request(fl.names[200], valid(at)...)
	// Not requests: a key that merely starts like the request tag, and a foreign secret.
	request(fl.names[3], types.Tag{Key: aws.String(vault.TagRequestAt + "-x"), Value: aws.String("1")})
	if _, err := fl.store.Create(ctx, "other/requested", "", sampleRecord()); err != nil {
		t.Fatal(err)
	}
	request("other/requested", valid(at)...)

	ids := slices.Clone(fl.names)
	ids[120] = fl.arns[120] // keyed by the id as given
	fl.fake.ResetCalls()
	got, err := fl.store.Requests(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{fl.names[200], fl.names[249], fl.names[7], fl.arns[120]}; !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("requests of %v, want %v", slices.Sorted(maps.Keys(got)), want)
	}
	if !rotator.RequestPending(got[fl.names[7]]) || !got[fl.names[7]].Request.At.Equal(at) || got[fl.names[7]].Request.By != "ops@host" {
		t.Errorf("%s: %+v", fl.names[7], got[fl.names[7]])
	}
	if !got[fl.names[249]].Request.Invalid || rotator.RequestPending(got[fl.names[200]]) || !rotator.RequestServed(got[fl.names[200]]) {
		t.Errorf("invalid %+v, served %+v", got[fl.names[249]], got[fl.names[200]])
	}
	if calls := fl.fake.Calls(); calls[fakesm.OpListSecrets] != 1 || len(calls) != 1 {
		t.Errorf("calls = %v, want 1 ListSecrets for 250 applications", calls)
	}
	if got, err := fl.store.Requests(ctx, nil); err != nil || len(got) != 0 || fl.fake.Count(fakesm.OpListSecrets) != 1 {
		t.Errorf("Requests of no ids = %v, %v; want nothing and no call", got, err)
	}
}

// TestRequestsRereadWhatTheStoreServed: the Store served a request and removed its tags, and the
// lagging listing still shows it pending; the secret is read on its own, and the request is
// not reported again. A request on a secret the Store did not write is taken from the listing.
func TestRequestsRereadWhatTheStoreServed(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 12)
	ctx := context.Background()
	at := time.Date(2026, 8, 3, 10, 0, 0, 0, time.UTC)
	tags, err := vault.RequestTags(vault.RotationRequest{At: at})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{3, 8} {
		if _, err := fl.fake.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String(fl.names[i]), Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := fl.store.Requests(ctx, fl.names); err != nil || len(got) != 2 {
		t.Fatalf("Requests before serving = %v, %v; want two", got, err)
	}
	if err := fl.store.ClearRequest(ctx, fl.names[3]); err != nil {
		t.Fatal(err)
	}
	fl.lag.stale.Store(true)
	fl.fake.ResetCalls()
	got, err := fl.store.Requests(ctx, fl.names)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{fl.names[8]}; !slices.Equal(slices.Sorted(maps.Keys(got)), want) {
		t.Errorf("requests of %v, want %v", slices.Sorted(maps.Keys(got)), want)
	}
	if calls := fl.fake.Calls(); calls[fakesm.OpDescribeSecret] != 1 || len(calls) != 1 {
		t.Errorf("calls behind the lagging listing = %v, want one DescribeSecret (%s)", calls, fl.names[3])
	}
}

func TestDescribeAll(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 120, "other/one")
	ctx := context.Background()
	ids := append(slices.Clone(fl.names), "lwa/app-gone")
	fl.fake.ResetCalls()
	infos, errs := fl.store.DescribeAll(ctx, ids)
	// Two pages for the 120, and the one not listed described on its own.
	if calls := fl.fake.Calls(); calls[fakesm.OpListSecrets] != 2 || calls[fakesm.OpDescribeSecret] != 1 || len(calls) != 2 {
		t.Errorf("calls = %v, want 2 ListSecrets and 1 DescribeSecret", calls)
	}
	if len(infos) != 121 || len(errs) != 121 || !errors.Is(errs[120], vault.ErrNotFound) || errors.Join(errs[:120]...) != nil {
		t.Fatalf("DescribeAll = %d infos, errors %v; want 121, the last one ErrNotFound", len(infos), errors.Join(errs...))
	}
	for i, id := range fl.names {
		want, err := fl.store.Describe(ctx, id)
		if err != nil || infos[i] != want {
			t.Errorf("%s: listed %+v, described %+v (%v)", id, infos[i], want, err)
		}
	}
}

// TestAtRestListsWhenItCan: the check takes its infos from one listing, describes only what
// the listing lacks, and describes everything when listing is refused.
func TestAtRestListsWhenItCan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		deny         bool
		wantList     int
		wantDescribe int
	}{
		{"listing allowed", false, 1, 1}, // the one describe: the secret that is not listed
		{"listing refused", true, 1, 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fl := newFleet(t, 8)
			if tc.deny {
				fl.failOn(fakesm.OpListSecrets, accessDenied)
			}
			ctx := context.Background()
			k := &countingKMS{}
			c, err := vault.NewAtRest(ctx, ourKeyID, fl.store, k, nil)
			if err != nil {
				t.Fatal(err)
			}
			var refs []vault.SecretRef
			for i, id := range fl.names {
				refs = append(refs, vault.SecretRef{App: fmt.Sprint("app-", i), SecretID: id})
			}
			refs = append(refs, vault.SecretRef{App: "gone", SecretID: "lwa/app-gone"})
			fl.fake.ResetCalls()
			violations, refusals, err := c.Check(ctx, refs)
			if err != nil || len(violations)+len(refusals) != 0 {
				t.Fatalf("Check = %v %v %v; want a clean pass", violations, refusals, err)
			}
			calls := fl.fake.Calls()
			if calls[fakesm.OpListSecrets] != tc.wantList || calls[fakesm.OpDescribeSecret] != tc.wantDescribe {
				t.Errorf("calls = %v, want %d ListSecrets and %d DescribeSecret", calls, tc.wantList, tc.wantDescribe)
			}
			if n := k.total(); n != 1 {
				t.Errorf("%d DescribeKey calls, want 1 for one key", n)
			}
		})
	}
}

// TestListingCostsAtAThousand backs the numbers docs/security.md and docs/performance.md give for
// the listing grant at 1,000 applications: a start-up (the at-rest check, then the first pass
// on a cold cache) costs 20 ListSecrets and 50 BatchGetSecretValue, a later pass 10 ListSecrets
// (Read: 1,000 DescribeSecret, plus 1,000 GetSecretValue cold), and the request watch one
// ListSecrets a round.
func TestListingCostsAtAThousand(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 1000)
	ctx := context.Background()
	k := &countingKMS{}
	check, err := vault.NewAtRest(ctx, ourKeyID, fl.store, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	var refs []vault.SecretRef
	for _, id := range fl.names {
		refs = append(refs, vault.SecretRef{App: id, SecretID: id})
	}
	fl.fake.ResetCalls()
	if violations, refusals, err := check.Check(ctx, refs); err != nil || len(violations)+len(refusals) != 0 {
		t.Fatalf("Check = %v %v %v", violations, refusals, err)
	}
	if calls := fl.fake.Calls(); !maps.Equal(calls, map[string]int{fakesm.OpListSecrets: 10}) {
		t.Errorf("the at-rest check's calls = %v, want 10 ListSecrets", calls)
	}
	if n := k.total(); n != 1 {
		t.Errorf("%d DescribeKey calls, want 1", n)
	}
	want := []map[string]int{
		{fakesm.OpListSecrets: 10, fakesm.OpBatchGetSecretValue: 50},
		{fakesm.OpListSecrets: 10},
	}
	for i, w := range want {
		fl.fake.ResetCalls()
		if got, err := fl.store.ReadListed(ctx, fl.names); err != nil || len(got) != 1000 {
			t.Fatalf("ReadListed #%d: %d snapshots, %v", i+1, len(got), err)
		}
		if calls := fl.fake.Calls(); !maps.Equal(calls, w) {
			t.Errorf("ReadListed #%d calls = %v, want %v", i+1, calls, w)
		}
	}
	fl.fake.ResetCalls()
	if _, err := fl.store.Requests(ctx, fl.names); err != nil {
		t.Fatal(err)
	}
	if calls := fl.fake.Calls(); !maps.Equal(calls, map[string]int{fakesm.OpListSecrets: 1}) {
		t.Errorf("Requests calls = %v, want 1 ListSecrets", calls)
	}
}

// TestReadListedPrefersTheExactARN: the full ARN of one secret is also the partial ARN of a
// secret named like it with the suffix; the id names the secret whose ARN it is, whichever is
// listed first.
func TestReadListedPrefersTheExactARN(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	arn := newFleet(t, 1).arns[0] // the model's ARNs depend on the name alone
	twin := arn[len("arn:aws:secretsmanager:us-east-1:123456789012:secret:"):]
	fake := fakesm.New(fakesm.Options{})
	s := &vault.Store{SM: fake}
	// The twin is created, and so listed, first.
	if _, err := s.Create(ctx, twin, "", newRecord()); err != nil {
		t.Fatal(err)
	}
	ids := []string{arn}
	for i := range 10 {
		name := fmt.Sprintf("lwa/app-%03d", i)
		got, err := s.Create(ctx, name, "", sampleRecord())
		if err != nil || (i == 0 && got != arn) {
			t.Fatalf("Create(%s) = %s, %v; want %s for app-000", name, got, err, arn)
		}
		if i > 0 {
			ids = append(ids, name)
		}
	}
	got, err := s.ReadListed(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if snap, ok := got[arn]; !ok || !sameRecord(snap.Current.Record, sampleRecord()) || len(got) != 10 {
		t.Errorf("ReadListed(%s): the ARN named the wrong secret (or none); %d snapshots", arn, len(got))
	}
	assertSameAsRead(t, fake, got)
}
