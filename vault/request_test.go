package vault_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/vault"
)

func TestRotationRequestLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	at := time.Date(2026, 8, 1, 9, 15, 0, 123456789, time.FixedZone("CEST", 2*3600))
	req := vault.RotationRequest{At: at, By: "ops@bastion-1", Reason: "key ceremony"}
	tags, err := vault.RequestTags(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.fake.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(secretName), Tags: tags}); err != nil {
		t.Fatal(err)
	}
	st, err := f.store.LoadState(ctx, secretName)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Request.At.Equal(at) || st.Request.At.Location() != time.UTC || st.Request.By != req.By || st.Request.Reason != req.Reason {
		t.Fatalf("Request = %+v, want %+v in UTC", st.Request, req)
	}
	if !rotator.RequestPending(st) || rotator.RequestServed(st) {
		t.Fatalf("a fresh request: pending %v served %v, want pending", rotator.RequestPending(st), rotator.RequestServed(st))
	}

	// SaveChanges neither writes nor removes the request: a save judged on a state read before
	// the request was written must not wipe it.
	if err := f.store.SaveChanges(ctx, secretName, vault.RotationState{}, vault.RotationState{Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if st, _ = f.store.LoadState(ctx, secretName); !rotator.RequestPending(st) {
		t.Fatal("SaveChanges of an older state removed the pending request")
	}
	served := st
	served.ServedRequest = st.Request.At
	if err := f.store.SaveChanges(ctx, secretName, st, served); err != nil {
		t.Fatal(err)
	}
	if st, _ = f.store.LoadState(ctx, secretName); rotator.RequestPending(st) || !rotator.RequestServed(st) {
		t.Fatalf("after serving: pending %v served %v, want served", rotator.RequestPending(st), rotator.RequestServed(st))
	}

	if err := f.store.ClearRequest(ctx, secretName); err != nil {
		t.Fatal(err)
	}
	st, _ = f.store.LoadState(ctx, secretName)
	if rotator.RequestPending(st) || rotator.RequestServed(st) || st.Request != (vault.RotationRequest{}) || st.Attempts != 1 {
		t.Fatalf("after ClearRequest: %+v, want only the attempts left", st)
	}
}

func TestRequestTagsRefuses(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		req  vault.RotationRequest
		want string
	}{
		{"no time", vault.RotationRequest{By: "ops"}, "time is required"},
		{"illegal requester", vault.RotationRequest{At: at, By: "ops;rm -rf"}, "requester is not a legal tag value"},
		{"long reason", vault.RotationRequest{At: at, Reason: strings.Repeat("x", 257)}, "reason is not a legal tag value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := vault.RequestTags(tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("RequestTags = %v, want an error saying %q", err, tc.want)
			}
			if tc.req.By != "" && strings.Contains(err.Error(), tc.req.By) {
				t.Errorf("the error repeats the value: %v", err)
			}
		})
	}
}

func TestPendingAndCurrentVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		stages        map[string][]string
		pending, curr string
	}{
		{"none", map[string][]string{"a": {"AWSCURRENT"}}, "", "a"},
		{"pending", map[string][]string{"a": {"AWSCURRENT"}, "b": {"AWSPENDING"}}, "b", "a"},
		{"leftover label on current", map[string][]string{"a": {"AWSCURRENT", "AWSPENDING"}}, "", "a"},
		{"no current", map[string][]string{}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := vault.PendingVersion(tc.stages); got != tc.pending {
				t.Errorf("PendingVersion = %q, want %q", got, tc.pending)
			}
			if got := vault.CurrentVersion(tc.stages); got != tc.curr {
				t.Errorf("CurrentVersion = %q, want %q", got, tc.curr)
			}
		})
	}
}

func TestMalformedRequestIsNotAnError(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.fake.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(secretName),
		Tags: []types.Tag{{Key: aws.String(vault.TagRequestAt), Value: aws.String("now please")}}}); err != nil {
		t.Fatal(err)
	}
	st, err := f.store.LoadState(ctx, secretName)
	if err != nil {
		t.Fatalf("an operator's bad request tag fails the whole state: %v", err)
	}
	if !st.Request.Invalid || rotator.RequestPending(st) || rotator.RequestServed(st) {
		t.Fatalf("a bad request tag: %+v, want invalid and neither pending nor served", st.Request)
	}
}
