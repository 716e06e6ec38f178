package vault_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/spapi-tools/lwa-rotator/testsupport/awstest"
	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// motoClients is shared by every integration test; each test uses its own secret name, so they can
// run in parallel without resetting moto.
var (
	motoClients awstest.Clients
	secretSeq   atomic.Int64
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	srv, err := moto.Start(ctx, nil)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vault tests need moto_server:", err)
		os.Exit(1)
	}
	motoClients = awstest.NewClients(srv.URL, nil)
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// callCounter counts the calls a Secrets Manager client sends to moto, by operation.
type callCounter struct {
	mu sync.Mutex
	n  map[string]int
}

// take returns the calls counted since the last take.
func (c *callCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// countingMoto is a client of the shared moto whose calls c counts.
func countingMoto(c *callCounter) *sm.Client {
	c.take()
	return sm.New(motoClients.SecretsManager.Options(), func(o *sm.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("count",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					c.mu.Lock()
					c.n[awsmiddleware.GetOperationName(ctx)]++
					c.mu.Unlock()
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	})
}

// motoSecret creates a KMS key and a secret holding sampleRecord under a name unique to t, and a
// store over a client whose calls calls counts.
func motoSecret(t *testing.T) (s *vault.Store, calls *callCounter, name, keyID, arn string) {
	t.Helper()
	ctx := context.Background()
	key, err := motoClients.KMS.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(t.Name())})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	keyID = aws.ToString(key.KeyMetadata.KeyId)
	// The counter keeps names unique when -count reruns a test against the same moto.
	name = fmt.Sprintf("lwa/%s-%d", strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()), secretSeq.Add(1))
	calls = &callCounter{}
	s = &vault.Store{SM: countingMoto(calls)}
	arn, err = s.Create(ctx, name, keyID, sampleRecord())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	calls.take()
	return s, calls, name, keyID, arn
}

func motoStages(t *testing.T, name string) map[string][]string {
	t.Helper()
	out, err := motoClients.SecretsManager.DescribeSecret(context.Background(), &sm.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	for id, st := range out.VersionIdsToStages {
		if len(st) == 0 {
			// moto lists a version that lost its last label; AWS leaves it out.
			delete(out.VersionIdsToStages, id)
			continue
		}
		slices.Sort(st)
		out.VersionIdsToStages[id] = st
	}
	return out.VersionIdsToStages
}

func motoRead(t *testing.T, s *vault.Store, name string) vault.Snapshot {
	t.Helper()
	snap, err := s.Read(context.Background(), name)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return snap
}

// TestMotoRotation is the daemon's rotation against moto: Read, StageOn, PromoteOn, and the
// label left behind cleared with ClearPendingOn, with the calls each step costs.
func TestMotoRotation(t *testing.T) {
	t.Parallel()
	s, calls, name, _, _ := motoSecret(t)
	ctx := context.Background()
	snap := motoRead(t, s, name)
	old := snap.Current.ID
	if !sameRecord(snap.Current.Record, sampleRecord()) || snap.Pending != nil {
		t.Fatalf("first snapshot: current %+v, pending %+v", snap.Current, snap.Pending)
	}
	if got := calls.take(); !maps.Equal(got, map[string]int{"DescribeSecret": 1, "GetSecretValue": 1}) {
		t.Errorf("first Read calls = %v, want 1 DescribeSecret and 1 GetSecretValue", got)
	}

	tok := vault.TokenFor("b0a1c2d3-notification")
	if err := s.StageOn(ctx, snap, tok, newRecord()); err != nil {
		t.Fatalf("StageOn: %v", err)
	}
	if got := calls.take(); !maps.Equal(got, map[string]int{"PutSecretValue": 1}) {
		t.Errorf("StageOn calls = %v, want 1 PutSecretValue", got)
	}
	if st := motoStages(t, name); len(st) != 2 || !slices.Equal(st[tok], []string{"AWSPENDING"}) || !slices.Equal(st[old], []string{"AWSCURRENT"}) {
		t.Fatalf("after StageOn: stages %v, want %s pending beside the current %s", st, tok, old)
	}
	// A redelivery judged on a fresh snapshot finds the token pending with the same record:
	// nothing to write.
	staged := motoRead(t, s, name)
	if staged.Pending == nil || staged.Pending.ID != tok || !sameRecord(staged.Pending.Record, newRecord()) {
		t.Fatalf("snapshot after StageOn: pending %+v", staged.Pending)
	}
	calls.take()
	if err := s.StageOn(ctx, staged, tok, newRecord()); err != nil {
		t.Fatalf("StageOn again: %v", err)
	}
	if got := calls.take(); len(got) != 0 {
		t.Errorf("a retried StageOn with the same token and record made calls %v, want none", got)
	}

	if err := s.PromoteOn(ctx, staged, tok); err != nil {
		t.Fatalf("PromoteOn: %v", err)
	}
	if got := calls.take(); !maps.Equal(got, map[string]int{"UpdateSecretVersionStage": 1}) {
		t.Errorf("PromoteOn calls = %v, want 1 UpdateSecretVersionStage", got)
	}
	// AWSPREVIOUS moved to the old current by itself; AWSPENDING stays on the promoted version.
	want := map[string][]string{tok: {"AWSCURRENT", "AWSPENDING"}, old: {"AWSPREVIOUS"}}
	if st := motoStages(t, name); !maps.EqualFunc(st, want, slices.Equal) {
		t.Fatalf("after PromoteOn: stages %v, want %v", st, want)
	}
	after := motoRead(t, s, name)
	if after.Current.ID != tok || !sameRecord(after.Current.Record, newRecord()) || after.Pending != nil || after.Holder(vault.StagePrevious) != old {
		t.Fatalf("snapshot after PromoteOn: current %s, pending %+v, previous %s", after.Current.ID, after.Pending, after.Holder(vault.StagePrevious))
	}
	calls.take()
	if err := s.PromoteOn(ctx, after, tok); err != nil {
		t.Fatalf("PromoteOn of the current version: %v", err)
	}
	if got := calls.take(); len(got) != 0 {
		t.Errorf("PromoteOn of the version already current made calls %v, want none", got)
	}

	if err := s.ClearPendingOn(ctx, after, tok, false); err != nil {
		t.Fatalf("ClearPendingOn: %v", err)
	}
	if got := calls.take(); !maps.Equal(got, map[string]int{"UpdateSecretVersionStage": 1}) {
		t.Errorf("ClearPendingOn calls = %v, want 1 UpdateSecretVersionStage", got)
	}
	want[tok] = []string{"AWSCURRENT"}
	if st := motoStages(t, name); !maps.EqualFunc(st, want, slices.Equal) {
		t.Fatalf("after ClearPendingOn: stages %v, want %v", st, want)
	}
	if err := s.ClearPendingOn(ctx, motoRead(t, s, name), tok, false); err != nil {
		t.Fatalf("ClearPendingOn with nothing to clear: %v", err)
	}
	if got := calls.take(); !maps.Equal(got, map[string]int{"DescribeSecret": 1}) {
		t.Errorf("Read and ClearPendingOn with nothing to clear: calls %v, want the Read's DescribeSecret alone", got)
	}
}

// TestMotoStageOnTokenConflict: a different value under a token already used is ErrTokenConflict
// and leaves the stored bytes alone. Who enforces it differs by case. AWS refuses a put whose
// ClientRequestToken names a version holding other bytes (ResourceExistsException); moto 5.2.1
// refuses it only for a version not labelled AWSPENDING, and silently overwrites a pending one.
// So a snapshot showing the token pending is judged by the Store itself, before any call; once
// the label is gone, the service's refusal is what the Store reads.
func TestMotoStageOnTokenConflict(t *testing.T) {
	t.Parallel()
	s, calls, name, _, _ := motoSecret(t)
	ctx := context.Background()
	tok := vault.TokenFor("conflict")
	if err := s.StageOn(ctx, motoRead(t, s, name), tok, newRecord()); err != nil {
		t.Fatalf("StageOn: %v", err)
	}
	value := func() string {
		t.Helper()
		out, err := motoClients.SecretsManager.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(tok)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.SecretString)
	}
	want := value()

	// The Store's check: the snapshot shows the token pending with another record.
	pending := motoRead(t, s, name)
	calls.take()
	if err := s.StageOn(ctx, pending, tok, sampleRecord()); !errors.Is(err, vault.ErrTokenConflict) {
		t.Fatalf("StageOn of other bytes under a pending token = %v, want ErrTokenConflict", err)
	}
	if got := calls.take(); len(got) != 0 {
		t.Errorf("the refusal made calls %v; it is the Store's, from the snapshot", got)
	}

	// The service's check: the label is gone, so moto refuses the put and the Store compares.
	if err := s.ClearPendingOn(ctx, pending, tok, false); err != nil {
		t.Fatal(err)
	}
	cleared := motoRead(t, s, name)
	calls.take()
	err := s.StageOn(ctx, cleared, tok, sampleRecord())
	var exists *types.ResourceExistsException
	if !errors.Is(err, vault.ErrTokenConflict) || !errors.As(err, &exists) {
		t.Fatalf("StageOn of other bytes under an unlabelled token = %v, want ErrTokenConflict wrapping moto's ResourceExistsException", err)
	}
	if got := calls.take(); !maps.Equal(got, map[string]int{"PutSecretValue": 1, "GetSecretValue": 1}) {
		t.Errorf("calls = %v, want the refused put and the read that compares", got)
	}
	if got := value(); got != want {
		t.Error("a refused StageOn changed the token's bytes")
	}

	// The same record again under the unlabelled token: the put is a no-op that attaches no
	// label (AWS's rule, which moto keeps), and one label move puts AWSPENDING back.
	if err := s.StageOn(ctx, cleared, tok, newRecord()); err != nil {
		t.Fatalf("StageOn of the same record under an unlabelled token: %v", err)
	}
	if got := calls.take(); !maps.Equal(got, map[string]int{"PutSecretValue": 1, "UpdateSecretVersionStage": 1}) {
		t.Errorf("calls = %v, want one put and one label move", got)
	}
	if st := motoStages(t, name); !slices.Equal(st[tok], []string{"AWSPENDING"}) || value() != want {
		t.Fatalf("after re-staging: stages %v; want %s pending with its first bytes", st, tok)
	}
}

// TestMotoStageOnAcrossASecretFormatChange: the daemon restarts with another secretFormat between
// two deliveries of one message, and the label was lost meanwhile (a verification that failed).
// The redelivery puts the same record in the other shape; moto refuses the put (other bytes
// under a used token), and the Store finds the same secret there, not a token conflict: the
// version keeps the bytes it was first put with and gets its label back.
func TestMotoStageOnAcrossASecretFormatChange(t *testing.T) {
	t.Parallel()
	s, _, name, _, _ := motoSecret(t)
	ctx := context.Background()
	tok := vault.TokenFor("format-change")
	if err := s.StageOn(ctx, motoRead(t, s, name), tok, newRecord()); err != nil {
		t.Fatalf("StageOn: %v", err)
	}
	if err := s.ClearPendingOn(ctx, motoRead(t, s, name), tok, false); err != nil {
		t.Fatal(err)
	}
	restarted := &vault.Store{SM: motoClients.SecretsManager, Format: vault.FormatLambdaSample}
	if err := restarted.StageOn(ctx, motoRead(t, restarted, name), tok, newRecord()); err != nil {
		t.Fatalf("StageOn after the format change = %v, want the genuine secret accepted", err)
	}
	snap := motoRead(t, restarted, name)
	if p := snap.Pending; p == nil || p.ID != tok || !sameRecord(p.Record, newRecord()) {
		t.Fatalf("pending after the format change: %+v", p)
	}
	out, err := motoClients.SecretsManager.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(tok)})
	if err != nil || !strings.HasPrefix(aws.ToString(out.SecretString), `{"clientId":`) {
		t.Fatalf("the version's bytes changed shape (err %v)", err)
	}
	// A different secret under the same token is still a conflict, in either format.
	if err := restarted.StageOn(ctx, snap, tok, sampleRecord()); !errors.Is(err, vault.ErrTokenConflict) {
		t.Fatalf("StageOn of another secret under the token = %v, want ErrTokenConflict", err)
	}
}

// TestMotoPromoteOnIsACompareAndSet: another replica promoted a version after our snapshot. Our
// PromoteOn names the snapshot's current in RemoveFromVersionId, which no longer holds AWSCURRENT,
// and moto refuses it as AWS does (InvalidParameterException): nothing moves, and the caller
// judges again on a fresh snapshot.
func TestMotoPromoteOnIsACompareAndSet(t *testing.T) {
	t.Parallel()
	s, _, name, _, _ := motoSecret(t)
	ctx := context.Background()
	ours, theirs := vault.TokenFor("ours"), vault.TokenFor("theirs")
	if err := s.StageOn(ctx, motoRead(t, s, name), ours, newRecord()); err != nil {
		t.Fatal(err)
	}
	snap := motoRead(t, s, name)
	replica := &vault.Store{SM: motoClients.SecretsManager}
	rsnap := motoRead(t, replica, name)
	if err := replica.StageOn(ctx, rsnap, theirs, newRecord()); err != nil {
		t.Fatal(err)
	}
	if err := replica.PromoteOn(ctx, rsnap, theirs); err != nil {
		t.Fatalf("the replica's PromoteOn: %v", err)
	}
	err := s.PromoteOn(ctx, snap, ours)
	var invalid *types.InvalidParameterException
	if !errors.As(err, &invalid) {
		t.Fatalf("PromoteOn on a snapshot whose AWSCURRENT moved = %v, want the service's InvalidParameterException", err)
	}
	want := map[string][]string{theirs: {"AWSCURRENT", "AWSPENDING"}, snap.Current.ID: {"AWSPREVIOUS"}}
	if st := motoStages(t, name); !maps.EqualFunc(st, want, slices.Equal) {
		t.Fatalf("after the refused promotion: stages %v, want %v", st, want)
	}
}

// TestMotoSaveChanges: only the fields that differ from the state the caller read are written,
// one TagResource for those set, one UntagResource for those cleared, nothing for no change;
// LoadState reads back what was saved.
func TestMotoSaveChanges(t *testing.T) {
	t.Parallel()
	s, calls, name, _, _ := motoSecret(t)
	ctx := context.Background()
	at := time.Date(2026, 8, 1, 9, 0, 0, 5, time.UTC)
	steps := []struct {
		name      string
		st        vault.RotationState
		wantCalls map[string]int
	}{
		{"set", vault.RotationState{RequestedAt: at, NoticedExpiry: expiry, Attempts: 2, RotationID: "r-1"}, map[string]int{"TagResource": 1}},
		{"no change", vault.RotationState{RequestedAt: at, NoticedExpiry: expiry, Attempts: 2, RotationID: "r-1"}, map[string]int{}},
		{"clear", vault.RotationState{NoticedExpiry: expiry}, map[string]int{"UntagResource": 1}},
		{"set and clear", vault.RotationState{LastCallAt: at, Attempts: 1}, map[string]int{"TagResource": 1, "UntagResource": 1}},
	}
	var was vault.RotationState
	for _, step := range steps {
		calls.take()
		if err := s.SaveChanges(ctx, name, was, step.st); err != nil {
			t.Fatalf("%s: SaveChanges: %v", step.name, err)
		}
		if got := calls.take(); !maps.Equal(got, step.wantCalls) {
			t.Errorf("%s: calls = %v, want %v", step.name, got, step.wantCalls)
		}
		if got, err := s.LoadState(ctx, name); err != nil || got != step.st {
			t.Fatalf("%s: LoadState = %+v, %v; want %+v", step.name, got, err, step.st)
		}
		was = step.st
	}
}

func TestMotoDescribe(t *testing.T) {
	t.Parallel()
	s, _, name, keyID, arn := motoSecret(t)
	ctx := context.Background()
	info, err := s.Describe(ctx, name)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if info.ARN != arn || info.Name != name || !strings.Contains(info.KMSKeyID, keyID) {
		t.Fatalf("Describe = %+v, want ARN %s, name %s, key %s", info, arn, name, keyID)
	}
	if _, err := s.Describe(ctx, name+"-missing"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("Describe of a missing secret = %v, want ErrNotFound", err)
	}
}
