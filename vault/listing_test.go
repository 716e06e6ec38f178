package vault_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

var accessDenied = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized", Fault: smithy.FaultClient}

// fleet is a model holding n applications' secrets (lwa/app-000 …) and some foreign ones.
type fleet struct {
	fake  *fakesm.SM
	store *vault.Store
	logs  *observer.ObservedLogs
	names []string
	arns  []string
	fault atomic.Pointer[func(op string) fakesm.Fault]
}

func newFleet(t *testing.T, n int, foreign ...string) *fleet {
	t.Helper()
	fl := &fleet{}
	fl.fake = fakesm.New(fakesm.Options{Fault: func(op, _ string) fakesm.Fault {
		if fn := fl.fault.Load(); fn != nil {
			return (*fn)(op)
		}
		return fakesm.Fault{}
	}})
	core, logs := observer.New(zapcore.DebugLevel)
	fl.logs = logs
	fl.store = &vault.Store{SM: fl.fake, Log: zap.New(core)}
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

// assertSameAsRead checks each snapshot against a Read of the same id by a store of its own.
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
			t.Errorf("ReadMany(%s) differs from Read: %v", id, err)
		}
	}
}

func TestReadManyCosts(t *testing.T) {
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
			return []string{fl.names[0], "lwa/app-missing", "arn:aws:secretsmanager:eu-west-1:1:secret:lwa/app-000-AbCdEf"}
		},
			nil, 1, 3, 1, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fl := newFleet(t, 250, tc.foreign...)
			ids := tc.ids(fl)
			ctx := context.Background()
			for _, pass := range []string{"cold", "warm"} {
				fl.fake.ResetCalls()
				got, err := fl.store.ReadMany(ctx, ids)
				if err != nil {
					t.Fatalf("%s ReadMany: %v", pass, err)
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

// TestReadManySnapshots: what each kind of secret gives, and what is left out for Read.
func TestReadManySnapshots(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 6)
	ctx := context.Background()
	s := fl.store
	// app-000 has a pending version.
	snap, err := s.Read(ctx, fl.names[0])
	if err != nil {
		t.Fatal(err)
	}
	tok := vault.TokenFor("listing-pending")
	if err := (&vault.Store{SM: fl.fake}).StageOn(ctx, snap, tok, newRecord()); err != nil {
		t.Fatal(err)
	}
	// app-001 carries rotation state and tags of its own.
	st := vault.RotationState{RequestedAt: time.Date(2026, 8, 1, 9, 0, 0, 5, time.UTC), Attempts: 2, RotationID: "r-1"}
	if err := s.SaveState(ctx, fl.names[1], st); err != nil {
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
	got, err := s.ReadMany(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{fl.names[0], fl.names[1], fl.names[4], fl.names[5]}; !slices.Equal(slices.Sorted(maps.Keys(got)), want) {
		t.Fatalf("snapshots of %v, want %v", slices.Sorted(maps.Keys(got)), want)
	}
	// One listing, one batch for the five listed current versions, one read of the pending one.
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
			t.Errorf("Read(%s) succeeded; ReadMany left it out", id)
		}
	}
}

// TestReadManyLeavesOutACurrentThatMoved: AWSCURRENT moves between the listing and the batch;
// the batch's value is of another version than the labels say, so the secret is left for Read.
func TestReadManyLeavesOutACurrentThatMoved(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 3)
	ctx := context.Background()
	other := &vault.Store{SM: fl.fake}
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
	got, err := fl.store.ReadMany(ctx, fl.names)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[fl.names[1]]; ok || len(got) != 2 {
		t.Fatalf("snapshots of %v, want all but %s", slices.Sorted(maps.Keys(got)), fl.names[1])
	}
	if snap, err := fl.store.Read(ctx, fl.names[1]); err != nil || !sameRecord(snap.Current.Record, newRecord()) {
		t.Fatalf("Read after the move: %v", err)
	}
}

// TestReadManyPrunesTheCache: a version that lost its labels is forgotten, so one labelled
// again later is read again rather than trusted from memory.
func TestReadManyPrunesTheCache(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 1)
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
	move := func(in *sm.UpdateSecretVersionStageInput) {
		in.SecretId, in.VersionStage = aws.String(id), aws.String(vault.StagePending)
		if _, err := fl.fake.UpdateSecretVersionStage(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	move(&sm.UpdateSecretVersionStageInput{RemoveFromVersionId: aws.String(tok)})
	if _, err := fl.store.ReadMany(ctx, []string{id}); err != nil {
		t.Fatal(err)
	}
	move(&sm.UpdateSecretVersionStageInput{MoveToVersionId: aws.String(tok)})
	fl.fake.ResetCalls()
	got, err := fl.store.ReadMany(ctx, []string{id})
	if err != nil || got[id].Pending == nil || got[id].Pending.ID != tok {
		t.Fatalf("ReadMany = %+v, %v; want the pending version back", got[id].Pending, err)
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
		fl := newFleet(t, 5)
		fl.failOn(fakesm.OpListSecrets, accessDenied)
		ctx := context.Background()
		calls := []func() error{
			func() error { _, err := fl.store.ReadMany(ctx, fl.names); return err },
			func() error { _, err := fl.store.Requests(ctx, fl.names); return err },
			func() error { _, err := fl.store.DescribeMany(ctx, fl.names); return err },
			func() error { _, err := fl.store.ReadMany(ctx, fl.names); return err },
		}
		for i, call := range calls {
			err := call()
			var api smithy.APIError
			if !errors.Is(err, vault.ErrListDenied) || !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" {
				t.Errorf("call %d = %v, want ErrListDenied wrapping AccessDeniedException", i, err)
			}
		}
		if n := fl.fake.Count(fakesm.OpListSecrets); n != 1 {
			t.Errorf("%d ListSecrets calls, want 1: the refusal must be remembered", n)
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
		got, err := fl.store.ReadMany(ctx, fl.names[:30])
		if err != nil || len(got) != 30 {
			t.Fatalf("ReadMany = %d snapshots, %v; want 30", len(got), err)
		}
		calls := fl.fake.Calls()
		if calls[fakesm.OpBatchGetSecretValue] != 1 || calls[fakesm.OpGetSecretValue] != 30 || calls[fakesm.OpListSecrets] != 1 {
			t.Errorf("calls = %v, want 1 refused batch, then 30 GetSecretValue beside 1 ListSecrets", calls)
		}
		assertSameAsRead(t, fl.fake, got)
		fl.fake.ResetCalls()
		if got, err = fl.store.ReadMany(ctx, fl.names); err != nil || len(got) != 45 {
			t.Fatalf("second ReadMany = %d snapshots, %v", len(got), err)
		}
		if calls := fl.fake.Calls(); calls[fakesm.OpBatchGetSecretValue] != 0 || calls[fakesm.OpGetSecretValue] != 15 {
			t.Errorf("second ReadMany calls = %v, want no batch and 15 GetSecretValue", calls)
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
		fl := newFleet(t, 1)
		s := &vault.Store{SM: describeOnly{fl.fake}}
		if _, err := s.ReadMany(context.Background(), fl.names); !errors.Is(err, vault.ErrListDenied) {
			t.Errorf("ReadMany over a client without ListSecrets = %v, want ErrListDenied", err)
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
	if err := fl.store.SaveState(ctx, fl.names[200], vault.RotationState{ServedRequest: at}); err != nil {
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
	if !got[fl.names[7]].RequestPending() || !got[fl.names[7]].Request.At.Equal(at) || got[fl.names[7]].Request.By != "ops@host" {
		t.Errorf("%s: %+v", fl.names[7], got[fl.names[7]])
	}
	if !got[fl.names[249]].Request.Invalid || got[fl.names[200]].RequestPending() || !got[fl.names[200]].RequestServed() {
		t.Errorf("invalid %+v, served %+v", got[fl.names[249]], got[fl.names[200]])
	}
	if calls := fl.fake.Calls(); calls[fakesm.OpListSecrets] != 1 || len(calls) != 1 {
		t.Errorf("calls = %v, want 1 ListSecrets for 250 applications", calls)
	}
	if got, err := fl.store.Requests(ctx, nil); err != nil || len(got) != 0 || fl.fake.Count(fakesm.OpListSecrets) != 1 {
		t.Errorf("Requests of no ids = %v, %v; want nothing and no call", got, err)
	}
}

func TestDescribeMany(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 120, "other/one")
	ctx := context.Background()
	ids := append(slices.Clone(fl.names), "lwa/app-gone")
	fl.fake.ResetCalls()
	got, err := fl.store.DescribeMany(ctx, ids)
	if err != nil || len(got) != 120 {
		t.Fatalf("DescribeMany = %d infos, %v; want 120", len(got), err)
	}
	for _, id := range fl.names {
		want, err := fl.store.Describe(ctx, id)
		if err != nil || got[id] != want {
			t.Errorf("%s: listed %+v, described %+v (%v)", id, got[id], want, err)
		}
	}
	if n := fl.fake.Count(fakesm.OpListSecrets); n != 2 {
		t.Errorf("%d ListSecrets for 120 secrets, want 2", n)
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

// TestListingCostsAtAThousand backs the numbers docs/security.md gives for the listing grant:
// 1,000 applications cost 10 ListSecrets and 50 BatchGetSecretValue on a cold cache, 10
// ListSecrets warm (Read: 1,000 DescribeSecret, plus 1,000 GetSecretValue cold), and the
// request watch one ListSecrets a round.
func TestListingCostsAtAThousand(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 1000)
	ctx := context.Background()
	want := []map[string]int{
		{fakesm.OpListSecrets: 10, fakesm.OpBatchGetSecretValue: 50},
		{fakesm.OpListSecrets: 10},
	}
	for i, w := range want {
		fl.fake.ResetCalls()
		if got, err := fl.store.ReadMany(ctx, fl.names); err != nil || len(got) != 1000 {
			t.Fatalf("ReadMany #%d: %d snapshots, %v", i+1, len(got), err)
		}
		if calls := fl.fake.Calls(); !maps.Equal(calls, w) {
			t.Errorf("ReadMany #%d calls = %v, want %v", i+1, calls, w)
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

// TestReadManyPrefersTheExactARN: the full ARN of one secret is also the partial ARN of a secret
// named like it with the suffix; the id names the secret whose ARN it is, whichever is listed
// first.
func TestReadManyPrefersTheExactARN(t *testing.T) {
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
	if got, err := s.Create(ctx, "lwa/app-000", "", sampleRecord()); err != nil || got != arn {
		t.Fatalf("Create = %s, %v; want %s", got, err, arn)
	}
	got, err := s.ReadMany(ctx, []string{arn})
	if err != nil {
		t.Fatal(err)
	}
	if snap, ok := got[arn]; !ok || !sameRecord(snap.Current.Record, sampleRecord()) {
		t.Errorf("ReadMany(%s): the ARN named the wrong secret (or none)", arn)
	}
	assertSameAsRead(t, fake, got)
}

// TestDescribeManyHandsItsListingToTheNextReadMany: start-up's at-rest check lists the secrets,
// and the first pass right after takes its snapshots from that listing instead of listing
// again; once, and only while the listing is fresh.
func TestDescribeManyHandsItsListingToTheNextReadMany(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// between runs after DescribeMany; wantLists is the ListSecrets calls of the ReadMany after it.
		between   func(t *testing.T, clk *fakeclock.Fake, fl *fleet)
		wantLists int
	}{
		{"right after", func(*testing.T, *fakeclock.Fake, *fleet) {}, 0},
		{"after the hand-off window", func(_ *testing.T, clk *fakeclock.Fake, _ *fleet) { clk.Advance(31 * time.Second) }, 3},
		{"a second ReadMany lists again", func(t *testing.T, _ *fakeclock.Fake, fl *fleet) {
			if _, err := fl.store.ReadMany(context.Background(), fl.names); err != nil {
				t.Fatal(err)
			}
		}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			fl := newFleet(t, 250)
			clk := fakeclock.New(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
			fl.store.Clock = clk
			if infos, err := fl.store.DescribeMany(ctx, fl.names); err != nil || len(infos) != 250 {
				t.Fatalf("DescribeMany: %d infos, %v", len(infos), err)
			}
			tc.between(t, clk, fl)
			fl.fake.ResetCalls()
			snaps, err := fl.store.ReadMany(ctx, fl.names)
			if err != nil || len(snaps) != 250 {
				t.Fatalf("ReadMany: %d snapshots, %v", len(snaps), err)
			}
			if n := fl.fake.Count(fakesm.OpListSecrets); n != tc.wantLists {
				t.Errorf("ReadMany made %d ListSecrets calls, want %d", n, tc.wantLists)
			}
			for _, id := range fl.names[:3] {
				if s := snaps[id]; s.Current.ID == "" || s.KMSKeyID == "" {
					t.Errorf("snapshot of %s = %+v, want its current version and key", id, s)
				}
			}
		})
	}
}
