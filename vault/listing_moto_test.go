package vault_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/vault"
)

// motoFleet creates n secrets under a prefix unique to the test in moto, one KMS key for all.
func motoFleet(t *testing.T, n int) (s *vault.Store, names, arns []string) {
	t.Helper()
	ctx := context.Background()
	key, err := motoClients.KMS.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(t.Name())})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	s = &vault.Store{SM: motoClients.SecretsManager}
	prefix := fmt.Sprintf("lwa/fleet-%d/", secretSeq.Add(1))
	for i := range n {
		name := fmt.Sprintf("%sapp-%02d", prefix, i)
		arn, err := s.Create(ctx, name, aws.ToString(key.KeyMetadata.KeyId), sampleRecord())
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		names, arns = append(names, name), append(arns, arn)
	}
	return s, names, arns
}

// TestMotoReadManyEqualsRead: against the real API (moto), ReadMany's snapshots are Read's, for
// names, full ARNs and ARNs without the random suffix, with a pending version, rotation state
// and tags of the secret's own in the mix; a second ReadMany reads no value.
func TestMotoReadManyEqualsRead(t *testing.T) {
	t.Parallel()
	s, names, arns := motoFleet(t, 25)
	ctx := context.Background()
	snap, err := s.Read(ctx, names[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StageOn(ctx, snap, vault.TokenFor("moto-listing"), newRecord()); err != nil {
		t.Fatal(err)
	}
	st := vault.RotationState{RequestedAt: time.Date(2026, 8, 1, 9, 0, 0, 5, time.UTC), Attempts: 1, RotationID: "r-9"}
	if err := s.SaveState(ctx, names[1], st); err != nil {
		t.Fatal(err)
	}
	ids := slices.Clone(names)
	ids[2], ids[3] = arns[2], arns[3][:len(arns[3])-7]
	ids = append(ids, names[0]+"-missing")
	for _, pass := range []string{"cold", "warm"} {
		reader := &vault.Store{SM: motoClients.SecretsManager}
		if pass == "warm" {
			reader = s
		}
		got, err := reader.ReadMany(ctx, ids)
		if err != nil {
			t.Fatalf("%s ReadMany: %v", pass, err)
		}
		if len(got) != 25 || !slices.Contains(slices.Collect(maps.Keys(got)), arns[3][:len(arns[3])-7]) {
			t.Fatalf("%s: snapshots of %v, want the 25 ids that exist", pass, slices.Sorted(maps.Keys(got)))
		}
		if got[names[0]].Pending == nil || got[names[1]].State != st {
			t.Errorf("%s: pending %+v, state %+v", pass, got[names[0]].Pending, got[names[1]].State)
		}
		assertSameAsRead(t, motoClients.SecretsManager, got)
	}
}

// TestMotoRequests: moto's tag-key filter finds the requesting secrets; DescribeMany's infos
// are Describe's.
func TestMotoRequests(t *testing.T) {
	t.Parallel()
	s, names, _ := motoFleet(t, 6)
	ctx := context.Background()
	at := time.Date(2026, 8, 3, 10, 0, 0, 0, time.UTC)
	for _, i := range []int{1, 4} {
		tags, err := vault.RequestTags(vault.RotationRequest{At: at, By: "ops@host", Reason: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := motoClients.SecretsManager.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String(names[i]), Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Requests(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{names[1], names[4]}; !slices.Equal(slices.Sorted(maps.Keys(got)), want) {
		t.Fatalf("requests of %v, want %v", slices.Sorted(maps.Keys(got)), want)
	}
	for id, st := range got {
		if !st.RequestPending() || !st.Request.At.Equal(at) || st.Request.Reason != "test" {
			t.Errorf("%s: %+v", id, st)
		}
	}
	infos, err := s.DescribeMany(ctx, names)
	if err != nil || len(infos) != 6 {
		t.Fatalf("DescribeMany = %v, %v", infos, err)
	}
	for _, id := range names {
		if want, err := s.Describe(ctx, id); err != nil || infos[id] != want {
			t.Errorf("%s: listed %+v, described %+v (%v)", id, infos[id], want, err)
		}
	}
}
