package vault_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

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

// motoSecret creates a KMS key and a secret holding sampleRecord under a name unique to t.
func motoSecret(t *testing.T) (s *vault.Store, name, keyID, arn string) {
	t.Helper()
	ctx := context.Background()
	key, err := motoClients.KMS.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(t.Name())})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	keyID = aws.ToString(key.KeyMetadata.KeyId)
	// The counter keeps names unique when -count reruns a test against the same moto.
	name = fmt.Sprintf("lwa/%s-%d", strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()), secretSeq.Add(1))
	s = &vault.Store{SM: motoClients.SecretsManager}
	arn, err = s.Create(ctx, name, keyID, sampleRecord())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return s, name, keyID, arn
}

func motoStages(t *testing.T, name string) map[string][]string {
	t.Helper()
	out, err := motoClients.SecretsManager.DescribeSecret(context.Background(), &sm.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	for id, st := range out.VersionIdsToStages {
		slices.Sort(st)
		out.VersionIdsToStages[id] = st
	}
	return out.VersionIdsToStages
}

func TestMotoRotation(t *testing.T) {
	t.Parallel()
	s, name, _, _ := motoSecret(t)
	ctx := context.Background()
	old, err := s.Current(ctx, name)
	if err != nil || !sameRecord(old.Record, sampleRecord()) {
		t.Fatalf("Current after Create = %+v, %v", old, err)
	}
	tok := vault.TokenFor("b0a1c2d3-notification")
	for i := range 2 { // the second Stage is a redelivery
		if err := s.Stage(ctx, name, tok, newRecord()); err != nil {
			t.Fatalf("Stage #%d: %v", i+1, err)
		}
	}
	if st := motoStages(t, name); len(st) != 2 || !slices.Equal(st[tok], []string{"AWSPENDING"}) {
		t.Fatalf("after Stage twice: stages %v, want one pending version %s beside the current one", st, tok)
	}
	p, ok, err := s.Pending(ctx, name)
	if err != nil || !ok || p.ID != tok || !sameRecord(p.Record, newRecord()) {
		t.Fatalf("Pending = %s, %v, %v", p.ID, ok, err)
	}
	if err := s.Promote(ctx, name, tok, old.ID); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if err := s.Promote(ctx, name, tok, old.ID); err != nil {
		t.Fatalf("second Promote: %v", err)
	}
	// A stale compare-and-set changes nothing: AWSCURRENT is no longer on the old version.
	if err := s.Stage(ctx, name, vault.TokenFor("older"), newRecord()); err != nil {
		t.Fatal(err)
	}
	if err := s.Promote(ctx, name, vault.TokenFor("older"), old.ID); !errors.Is(err, vault.ErrCurrentMoved) {
		t.Fatalf("Promote against a moved AWSCURRENT = %v, want ErrCurrentMoved", err)
	}
	if err := s.ClearPending(ctx, name, vault.TokenFor("older")); err != nil {
		t.Fatal(err)
	}
	cur, err := s.Current(ctx, name)
	if err != nil || cur.ID != tok || !sameRecord(cur.Record, newRecord()) {
		t.Fatalf("Current after Promote = %s, %v", cur.ID, err)
	}
	prev, err := s.Previous(ctx, name)
	if err != nil || prev.ID != old.ID || !sameRecord(prev.Record, sampleRecord()) {
		t.Fatalf("Previous after Promote = %s, %v; want %s", prev.ID, err, old.ID)
	}
	for id, st := range motoStages(t, name) {
		if slices.Contains(st, "AWSPENDING") {
			t.Errorf("version %s still has AWSPENDING: %v", id, st)
		}
	}
	if _, ok, err := s.Pending(ctx, name); ok || err != nil {
		t.Errorf("Pending after Promote = %v, %v", ok, err)
	}
}

func TestMotoStageConflictAndClearPending(t *testing.T) {
	t.Parallel()
	s, name, _, _ := motoSecret(t)
	ctx := context.Background()
	tok := vault.TokenFor("conflict")
	if err := s.Stage(ctx, name, tok, newRecord()); err != nil {
		t.Fatalf("Stage: %v", err)
	}
	// moto would overwrite here; the store's own byte check must refuse.
	if err := s.Stage(ctx, name, tok, sampleRecord()); !errors.Is(err, vault.ErrTokenConflict) {
		t.Fatalf("Stage with other bytes = %v, want ErrTokenConflict", err)
	}
	if p, _, err := s.Pending(ctx, name); err != nil || !sameRecord(p.Record, newRecord()) {
		t.Fatalf("pending value changed after a refused Stage (err %v)", err)
	}
	for i := range 2 {
		if err := s.ClearPending(ctx, name, tok); err != nil {
			t.Fatalf("ClearPending #%d: %v", i+1, err)
		}
	}
	if _, ok, err := s.Pending(ctx, name); ok || err != nil {
		t.Fatalf("Pending after ClearPending = %v, %v", ok, err)
	}
	if cur, err := s.Current(ctx, name); err != nil || !sameRecord(cur.Record, sampleRecord()) {
		t.Fatalf("Current after ClearPending = %v", err)
	}
}

func TestMotoStateAndDescribe(t *testing.T) {
	t.Parallel()
	s, name, keyID, arn := motoSecret(t)
	ctx := context.Background()
	info, err := s.Describe(ctx, name)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if info.ARN != arn || info.Name != name || !strings.Contains(info.KMSKeyID, keyID) {
		t.Fatalf("Describe = %+v, want ARN %s, name %s, key %s", info, arn, name, keyID)
	}
	st := vault.RotationState{RequestedAt: time.Date(2026, 8, 1, 9, 0, 0, 5, time.UTC), NoticedExpiry: expiry, Attempts: 2, RotationID: "r-1"}
	if err := s.SaveState(ctx, name, st); err != nil {
		t.Fatalf("SaveState: %v", err)
	}
	if got, err := s.LoadState(ctx, name); err != nil || got != st {
		t.Fatalf("LoadState = %+v, %v; want %+v", got, err, st)
	}
	st.Attempts, st.RotationID = 0, ""
	if err := s.SaveState(ctx, name, st); err != nil {
		t.Fatalf("SaveState (clearing): %v", err)
	}
	if got, err := s.LoadState(ctx, name); err != nil || got != st {
		t.Fatalf("LoadState after clearing = %+v, %v; want %+v", got, err, st)
	}
	if _, err := s.Describe(ctx, name+"-missing"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("Describe of a missing secret = %v, want ErrNotFound", err)
	}
}

// TestMotoStageAcrossASecretFormatChange: the daemon restarts with another secretFormat between
// two deliveries of one message. The redelivery re-stages the same record in the other shape; it
// is the same secret, not a token conflict, and the version first put stays as it was.
func TestMotoStageAcrossASecretFormatChange(t *testing.T) {
	t.Parallel()
	s, name, _, _ := motoSecret(t)
	ctx := context.Background()
	tok := vault.TokenFor("format-change")
	if err := s.Stage(ctx, name, tok, newRecord()); err != nil {
		t.Fatalf("Stage: %v", err)
	}
	restarted := &vault.Store{SM: motoClients.SecretsManager, Format: vault.FormatLambdaSample}
	if err := restarted.Stage(ctx, name, tok, newRecord()); err != nil {
		t.Fatalf("Stage after the format change = %v, want the genuine secret accepted", err)
	}
	if p, _, err := restarted.Pending(ctx, name); err != nil || !sameRecord(p.Record, newRecord()) {
		t.Fatalf("pending after the format change (err %v)", err)
	}
	// A different secret under the same token is still a conflict, in either format.
	if err := restarted.Stage(ctx, name, tok, sampleRecord()); !errors.Is(err, vault.ErrTokenConflict) {
		t.Fatalf("Stage of another secret under the token = %v, want ErrTokenConflict", err)
	}
}
