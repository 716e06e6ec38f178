package vault_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

const (
	ourKeyID   = "1111aaaa-0000-4000-8000-000000000001"
	otherKeyID = "2222bbbb-0000-4000-8000-000000000002"
	awsKeyID   = "3333cccc-0000-4000-8000-000000000003"
)

func keyARNOf(id string) string { return "arn:aws:kms:us-east-1:123456789012:key/" + id }

// countingKMS answers DescribeKey for a few keys (by id, ARN or alias) and counts the calls.
type countingKMS struct {
	mu    sync.Mutex
	calls map[string]int
}

func (k *countingKMS) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	id := aws.ToString(in.KeyId)
	k.mu.Lock()
	if k.calls == nil {
		k.calls = map[string]int{}
	}
	k.calls[id]++
	k.mu.Unlock()
	id = strings.TrimPrefix(id, "arn:aws:kms:us-east-1:123456789012:key/")
	if id == "alias/lwa" {
		id = ourKeyID
	}
	manager := kmstypes.KeyManagerTypeCustomer
	switch id {
	case ourKeyID, otherKeyID:
	case awsKeyID:
		manager = kmstypes.KeyManagerTypeAws
	default:
		return nil, &kmstypes.NotFoundException{Message: aws.String("no such key")}
	}
	return &kms.DescribeKeyOutput{KeyMetadata: &kmstypes.KeyMetadata{KeyId: aws.String(id), Arn: aws.String(keyARNOf(id)), KeyManager: manager}}, nil
}

func (k *countingKMS) total() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, c := range k.calls {
		n += c
	}
	return n
}

// atRestWorld makes one secret per key given ("" for the AWS-managed key) with ownTags tags
// of its own.
func atRestWorld(t *testing.T, keys []string, ownTags int) (*vault.Store, []vault.SecretRef) {
	t.Helper()
	fake := fakesm.New(fakesm.Options{})
	store := &vault.Store{SM: fake}
	ctx := context.Background()
	var refs []vault.SecretRef
	for i, key := range keys {
		name := fmt.Sprintf("lwa/app-%d", i)
		if _, err := store.Create(ctx, name, key, sampleRecord()); err != nil {
			t.Fatal(err)
		}
		if ownTags > 0 {
			var tags []types.Tag
			for j := range ownTags {
				tags = append(tags, types.Tag{Key: aws.String(fmt.Sprintf("team-%d", j)), Value: aws.String("x")})
			}
			if _, err := fake.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String(name), Tags: tags}); err != nil {
				t.Fatal(err)
			}
		}
		refs = append(refs, vault.SecretRef{App: fmt.Sprintf("app-%d", i), SecretID: name})
	}
	return store, refs
}

// TestAtRestDescribesEachKeyOnce: applications sharing a key cost one DescribeKey between them,
// at start-up and on every later check.
func TestAtRestDescribesEachKeyOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		configured string
		apps       int
		// wantCalls counts DescribeKey over start-up and a second check (a reload).
		wantCalls int
	}{
		{"configured as the id the secrets report", ourKeyID, 8, 1},
		{"configured as an alias: the alias and the secrets' id", "alias/lwa", 8, 2},
		{"one application", ourKeyID, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			keys := make([]string, tc.apps)
			for i := range keys {
				keys[i] = ourKeyID
			}
			store, refs := atRestWorld(t, keys, 0)
			k := &countingKMS{}
			ctx := context.Background()
			c, err := vault.NewAtRest(ctx, tc.configured, store, k, nil)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				violations, refusals, err := c.Check(ctx, refs)
				if err != nil || len(violations) != 0 || len(refusals) != 0 {
					t.Fatalf("Check = %v, %v, %v; want a clean pass", violations, refusals, err)
				}
			}
			if n := k.total(); n != tc.wantCalls {
				t.Errorf("%d DescribeKey calls for %d applications on one key, want %d (%v)", n, tc.apps, tc.wantCalls, k.calls)
			}
		})
	}
}

func TestAtRestFindings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		keys           []string
		ownTags        int
		wantViolations []string
		wantRefusals   []string
		wantErr        error
	}{
		{name: "configured key passes", keys: []string{ourKeyID}},
		{name: "AWS-managed default key", keys: []string{""},
			wantViolations: []string{"secret lwa/app-0 uses the AWS-managed key, not the configured customer-managed key"}},
		{name: "another customer key", keys: []string{ourKeyID, otherKeyID},
			wantViolations: []string{"secret lwa/app-1 is encrypted with " + otherKeyID + ", not the configured key alias/lwa"}},
		{name: "an AWS-managed key named explicitly", keys: []string{awsKeyID}, wantErr: vault.ErrAtRest},
		{name: "no room for the daemon's tags", keys: []string{ourKeyID}, ownTags: vault.MaxTags - len(vault.StateTags) + 2,
			wantRefusals: []string{fmt.Sprintf("secret lwa/app-0 has %d tags of its own; the daemon needs room for %d more (Secrets Manager allows %d): remove 2 tags",
				vault.MaxTags-len(vault.StateTags)+2, len(vault.StateTags), vault.MaxTags)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store, refs := atRestWorld(t, tc.keys, tc.ownTags)
			ctx := context.Background()
			c, err := vault.NewAtRest(ctx, "alias/lwa", store, &countingKMS{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			violations, refusals, err := c.Check(ctx, refs)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Check error = %v, want %v", err, tc.wantErr)
			}
			if fmt.Sprint(violations) != fmt.Sprint(tc.wantViolations) || fmt.Sprint(refusals) != fmt.Sprint(tc.wantRefusals) {
				t.Errorf("violations %q refusals %q, want %q and %q", violations, refusals, tc.wantViolations, tc.wantRefusals)
			}
		})
	}
}

func TestAtRestConfiguredKeyAndUnreachableSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := atRestWorld(t, nil, 0)
	if _, err := vault.NewAtRest(ctx, awsKeyID, store, &countingKMS{}, nil); !errors.Is(err, vault.ErrAtRest) ||
		!strings.Contains(err.Error(), "describing the configured KMS key") {
		t.Fatalf("NewAtRest on an AWS-managed key = %v, want ErrAtRest", err)
	}
	if _, err := vault.NewAtRest(ctx, "alias/missing", store, &countingKMS{}, nil); err == nil || errors.Is(err, vault.ErrAtRest) {
		t.Fatalf("NewAtRest on a missing key = %v, want a plain error", err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	c, err := vault.NewAtRest(ctx, ourKeyID, store, &countingKMS{}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	violations, refusals, err := c.Check(ctx, []vault.SecretRef{{App: "gone", SecretID: "lwa/gone"}})
	if err != nil || len(violations)+len(refusals) != 0 {
		t.Fatalf("an unreachable secret: %v %v %v, want it to pass", violations, refusals, err)
	}
	if logs.FilterMessage("secret unreachable").FilterField(zap.String("app", "gone")).Len() != 1 {
		t.Error("the unreachable secret was not logged")
	}
}
