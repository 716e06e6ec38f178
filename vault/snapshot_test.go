package vault_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

func (f fixture) read(t *testing.T) vault.Snapshot {
	t.Helper()
	snap, err := f.store.Read(context.Background(), secretName)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return snap
}

// TestReadCostsOneDescribe: a snapshot is one DescribeSecret plus a GetSecretValue per labelled
// version not read before; versions never change, so a second snapshot reads none.
func TestReadCostsOneDescribe(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := vault.TokenFor("read")
	if err := f.store.StageOn(context.Background(), f.read(t), tok, newRecord()); err != nil {
		t.Fatal(err)
	}
	f.fake.ResetCalls()
	snap := f.read(t)
	if snap.Current.ID != f.oldVer || snap.Pending == nil || snap.Pending.ID != tok || !sameRecord(snap.Pending.Record, newRecord()) {
		t.Fatalf("snapshot current %s pending %+v", snap.Current.ID, snap.Pending)
	}
	// The first snapshot read the current version; StageOn remembered what it wrote.
	if got := f.fake.Calls(); got[fakesm.OpDescribeSecret] != 1 || got[fakesm.OpGetSecretValue] != 0 {
		t.Errorf("calls for one snapshot = %v, want 1 DescribeSecret and no GetSecretValue", got)
	}
	fresh := &vault.Store{SM: f.fake}
	f.fake.ResetCalls()
	if _, err := fresh.Read(context.Background(), secretName); err != nil {
		t.Fatal(err)
	}
	if got := f.fake.Calls(); got[fakesm.OpDescribeSecret] != 1 || got[fakesm.OpGetSecretValue] != 2 {
		t.Errorf("calls for a first snapshot = %v, want 1 DescribeSecret and 2 GetSecretValue", got)
	}
}

func TestReadErrorsOnSnapshots(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.fake.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Read(ctx, "nope"); !errors.Is(err, vault.ErrNotFound) {
		t.Errorf("Read of a missing secret = %v, want ErrNotFound", err)
	}
	if _, err := f.store.Read(ctx, "empty"); !errors.Is(err, vault.ErrNoCurrent) {
		t.Errorf("Read of a secret without a value = %v, want ErrNoCurrent", err)
	}
}

func TestStageOn(t *testing.T) {
	t.Parallel()
	tok := vault.TokenFor("stage-on")
	tests := []struct {
		name string
		// prepare runs before the snapshot is taken.
		prepare func(t *testing.T, f fixture)
		// stale is a write made after the snapshot: another replica.
		stale     func(t *testing.T, f fixture)
		record    vault.Record
		wantErr   error
		wantCalls map[string]int
		wantValue string // the bytes the token holds afterwards ("" : Encode(record))
		// check looks at what else the row is about.
		check func(t *testing.T, f fixture)
	}{
		{name: "fresh token: one put", record: newRecord(),
			wantCalls: map[string]int{fakesm.OpPutSecretValue: 1},
			check: func(t *testing.T, f fixture) {
				if f.logs.FilterField(zap.String("version", tok)).Len() == 0 {
					t.Error("no log line names the staged version")
				}
				if vault.CurrentVersion(f.fake.Versions(secretName)) != f.oldVer {
					t.Error("staging moved AWSCURRENT")
				}
			}},
		{name: "an abandoned rotation's version is pending: the put takes the label from it", record: newRecord(),
			prepare: func(t *testing.T, f fixture) {
				stageRaw(t, f, vault.TokenFor("abandoned"), encoded(t, sampleRecord()), vault.StagePending)
			},
			wantCalls: map[string]int{fakesm.OpPutSecretValue: 1},
			check: func(t *testing.T, f fixture) {
				if st := f.fake.Versions(secretName)[vault.TokenFor("abandoned")]; len(st) != 0 {
					t.Errorf("the abandoned version still has %v", st)
				}
			}},
		{name: "already pending with the same record: nothing written", record: newRecord(),
			prepare:   func(t *testing.T, f fixture) { stageRaw(t, f, tok, encoded(t, newRecord()), vault.StagePending) },
			wantCalls: map[string]int{}},
		{name: "already pending with another record: conflict, nothing written", record: sampleRecord(), wantErr: vault.ErrTokenConflict,
			prepare:   func(t *testing.T, f fixture) { stageRaw(t, f, tok, encoded(t, newRecord()), vault.StagePending) },
			wantCalls: map[string]int{}, wantValue: "new"},
		{name: "another replica put other bytes under the token since the snapshot", record: newRecord(), wantErr: vault.ErrTokenConflict,
			stale: func(t *testing.T, f fixture) {
				stageRaw(t, f, tok, `{"clientId":"x","clientSecret":"y"}`, vault.StagePending)
			},
			wantCalls: map[string]int{fakesm.OpPutSecretValue: 1, fakesm.OpGetSecretValue: 1}, wantValue: `{"clientId":"x","clientSecret":"y"}`},
		{name: "another replica staged the same record under the token since the snapshot: AWS's put is a no-op", record: newRecord(),
			stale:     func(t *testing.T, f fixture) { stageRaw(t, f, tok, encoded(t, newRecord()), vault.StagePending) },
			wantCalls: map[string]int{fakesm.OpPutSecretValue: 1}},
		{name: "another replica staged the same record in the other format since the snapshot: the same secret, no conflict", record: newRecord(),
			stale: func(t *testing.T, f fixture) {
				b, err := vault.Encode(newRecord(), vault.FormatLambdaSample)
				if err != nil {
					t.Fatal(err)
				}
				stageRaw(t, f, tok, string(b), vault.StagePending)
			},
			wantCalls: map[string]int{fakesm.OpPutSecretValue: 1, fakesm.OpGetSecretValue: 1, fakesm.OpUpdateSecretVersionStage: 1},
			wantValue: "lambda"},
		{name: "token names an unlabelled version with the same bytes: the label is attached", record: newRecord(),
			prepare: func(t *testing.T, f fixture) {
				stageRaw(t, f, tok, encoded(t, newRecord()), vault.StagePending)
				stageRaw(t, f, vault.TokenFor("later"), encoded(t, sampleRecord()), vault.StagePending) // takes the label
			},
			wantCalls: map[string]int{fakesm.OpPutSecretValue: 1, fakesm.OpUpdateSecretVersionStage: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if tc.prepare != nil {
				tc.prepare(t, f)
			}
			snap := f.read(t)
			if tc.stale != nil {
				tc.stale(t, f)
			}
			f.fake.ResetCalls()
			err := f.store.StageOn(context.Background(), snap, tok, tc.record)
			noLeak(t, err)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("StageOn = %v, want %v", err, tc.wantErr)
			}
			if got := f.fake.Calls(); !maps.Equal(got, tc.wantCalls) {
				t.Errorf("calls = %v, want %v", got, tc.wantCalls)
			}
			want := tc.wantValue
			switch want {
			case "":
				want = encoded(t, tc.record)
			case "new":
				want = encoded(t, newRecord())
			case "lambda":
				b, _ := vault.Encode(tc.record, vault.FormatLambdaSample)
				want = string(b)
			}
			if got, _ := f.fake.Value(secretName, tok); got != want {
				t.Error("the token's bytes are not the ones expected")
			}
			if tc.wantErr == nil {
				if holder := vault.PendingVersion(f.fake.Versions(secretName)); holder != tok {
					t.Errorf("AWSPENDING on %q, want %s", holder, tok)
				}
			}
			if tc.check != nil {
				tc.check(t, f)
			}
		})
	}
}

func TestPromoteOnAndClearPendingOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	tok := vault.TokenFor("promote-on")
	if err := f.store.StageOn(ctx, f.read(t), tok, newRecord()); err != nil {
		t.Fatal(err)
	}
	snap := f.read(t)

	// A replica promotes first: our snapshot's compare-and-set is refused and changes nothing.
	other := vault.TokenFor("replica")
	stageRaw(t, f, other, encoded(t, sampleRecord()), "REPLICA")
	f.moveCurrent(t, other, f.oldVer)
	err := f.store.PromoteOn(ctx, snap, tok)
	var invalid *types.InvalidParameterException
	if !errors.As(err, &invalid) {
		t.Fatalf("PromoteOn on a stale snapshot = %v, want the service's refusal", err)
	}
	if vault.CurrentVersion(f.fake.Versions(secretName)) != other {
		t.Fatal("a refused promotion moved AWSCURRENT")
	}
	f.moveCurrent(t, f.oldVer, other)

	f.fake.ResetCalls()
	if err := f.store.PromoteOn(ctx, snap, tok); err != nil {
		t.Fatalf("PromoteOn: %v", err)
	}
	// One call: AWSPREVIOUS follows the old current, and AWSPENDING stays on the promoted version,
	// where it no longer counts as pending.
	st := f.fake.Versions(secretName)
	if !slices.Equal(slices.Sorted(slices.Values(st[tok])), []string{vault.StageCurrent, vault.StagePending}) ||
		!slices.Equal(st[f.oldVer], []string{vault.StagePrevious}) {
		t.Fatalf("after PromoteOn: %v", st)
	}
	after := f.read(t)
	if after.Pending != nil || after.Current.ID != tok || !sameRecord(after.Current.Record, newRecord()) {
		t.Fatalf("snapshot after PromoteOn: current %s, pending %+v", after.Current.ID, after.Pending)
	}
	if err := f.store.PromoteOn(ctx, after, tok); err != nil {
		t.Fatalf("PromoteOn again: %v", err)
	}
	if err := f.store.ClearPendingOn(ctx, after, tok, false); err != nil {
		t.Fatalf("ClearPendingOn: %v", err)
	}
	if err := f.store.ClearPendingOn(ctx, f.read(t), tok, false); err != nil {
		t.Fatalf("ClearPendingOn with nothing to clear: %v", err)
	}
	if n := f.fake.Count(fakesm.OpUpdateSecretVersionStage); n != 2 {
		t.Errorf("%d label moves, want 2 (the promotion and one clear)", n)
	}
	if slices.Contains(f.fake.Versions(secretName)[tok], vault.StagePending) {
		t.Error("AWSPENDING left on the promoted version")
	}
}

// stageRaw puts value under token with the given labels, straight on the model.
func stageRaw(t *testing.T, f fixture, token, value string, stages ...string) {
	t.Helper()
	if _, err := f.fake.PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: aws.String(secretName),
		ClientRequestToken: aws.String(token), SecretString: aws.String(value), VersionStages: stages}); err != nil {
		t.Fatalf("put %s: %v", token, err)
	}
}

func encoded(t *testing.T, r vault.Record) string {
	t.Helper()
	b, err := vault.Encode(r, vault.FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The snapshot Promoted predicts is the one a fresh read finds after PromoteOn: the rotator plans
// on it instead of reading the secret again.
func TestPromotedIsWhatAReadFindsAfterPromoteOn(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	tok := vault.TokenFor("promoted")
	if err := f.store.StageOn(ctx, f.read(t), tok, newRecord()); err != nil {
		t.Fatal(err)
	}
	before := f.read(t)
	if err := f.store.PromoteOn(ctx, before, tok); err != nil {
		t.Fatal(err)
	}
	want := before.Promoted(*before.Pending)
	got := (&vault.Store{SM: f.fake}).Read
	after, err := got(ctx, secretName)
	if err != nil {
		t.Fatal(err)
	}
	sortStages := func(m map[string][]string) map[string][]string {
		out := map[string][]string{}
		for k, v := range m {
			out[k] = slices.Sorted(slices.Values(v))
		}
		return out
	}
	if after.Current.ID != tok || want.Current.ID != tok || after.Pending != nil || want.Pending != nil ||
		!maps.EqualFunc(sortStages(after.Labels), sortStages(want.Labels), slices.Equal[[]string]) {
		t.Errorf("after PromoteOn a read finds current %s, pending %v, labels %v; Promoted predicted %s, %v, %v",
			after.Current.ID, after.Pending, after.Labels, want.Current.ID, want.Pending, want.Labels)
	}
}
