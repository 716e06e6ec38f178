package vault_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/rotator"
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

// TestMotoReadListedEqualsRead: against the real API (moto), ReadListed's snapshots are Read's,
// for names, full ARNs and ARNs without the random suffix, with a pending version, rotation state
// and tags of the secret's own in the mix (written by another store, so none is the reader's
// own recent write); a second ReadListed is one ListSecrets and reads no value.
func TestMotoReadListedEqualsRead(t *testing.T) {
	t.Parallel()
	writer, names, arns := motoFleet(t, 25)
	ctx := context.Background()
	snap, err := writer.Read(ctx, names[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.StageOn(ctx, snap, vault.TokenFor("moto-listing"), newRecord()); err != nil {
		t.Fatal(err)
	}
	st := vault.RotationState{RequestedAt: time.Date(2026, 8, 1, 9, 0, 0, 5, time.UTC), Attempts: 1, RotationID: "r-9"}
	if err := writer.SaveChanges(ctx, names[1], vault.RotationState{}, st); err != nil {
		t.Fatal(err)
	}
	ids := slices.Clone(names)
	ids[2], ids[3] = arns[2], arns[3][:len(arns[3])-7]
	ids = append(ids, names[0]+"-missing")
	calls := &callCounter{}
	reader := &vault.Store{SM: countingMoto(calls)}
	for _, pass := range []string{"cold", "warm"} {
		got, err := reader.ReadListed(ctx, ids)
		if err != nil {
			t.Fatalf("%s ReadListed: %v", pass, err)
		}
		if len(got) != 25 || !slices.Contains(slices.Collect(maps.Keys(got)), arns[3][:len(arns[3])-7]) {
			t.Fatalf("%s: snapshots of %v, want the 25 ids that exist", pass, slices.Sorted(maps.Keys(got)))
		}
		if got[names[0]].Pending == nil || got[names[1]].State != st {
			t.Errorf("%s: pending %+v, state %+v", pass, got[names[0]].Pending, got[names[1]].State)
		}
		if n := calls.take(); pass == "warm" && !maps.Equal(n, map[string]int{"ListSecrets": 1}) {
			t.Errorf("warm calls = %v, want 1 ListSecrets", n)
		}
		assertSameAsRead(t, motoClients.SecretsManager, got)
	}
	// The reader's own write keeps that secret out of its listed answers for a while.
	if err := reader.ClearRequest(ctx, names[5]); err != nil {
		t.Fatal(err)
	}
	if got, err := reader.ReadListed(ctx, ids); err != nil || len(got) != 24 {
		t.Fatalf("after the reader's own write: %d snapshots, %v; want 24", len(got), err)
	} else if _, ok := got[names[5]]; ok {
		t.Errorf("%s, written by the reader a moment ago, was answered from the listing", names[5])
	}
}

// TestMotoRequests: moto's tag-key filter finds the requesting secrets; DescribeAll's infos are
// Describe's.
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
		if !rotator.RequestPending(st) || !st.Request.At.Equal(at) || st.Request.Reason != "test" {
			t.Errorf("%s: %+v", id, st)
		}
	}
	infos, errs := s.DescribeAll(ctx, names)
	if err := errors.Join(errs...); err != nil || len(infos) != 6 {
		t.Fatalf("DescribeAll = %v, %v", infos, err)
	}
	for i, id := range names {
		if want, err := s.Describe(ctx, id); err != nil || infos[i] != want {
			t.Errorf("%s: listed %+v, described %+v (%v)", id, infos[i], want, err)
		}
	}
}
