package vault_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

func TestStateTags(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 8, 1, 9, 15, 0, 123456789, time.UTC)
	tests := []struct {
		name     string
		st       vault.RotationState
		wantTags map[string]string
	}{
		{"full", vault.RotationState{RequestedAt: at, NextAttemptAt: at.Add(time.Hour), NoticedExpiry: expiry, LastCallAt: at.Add(-time.Minute),
			Attempts: 3, RotationID: "rot-2026-08-01T09:15:00Z", ServedRequest: at.Add(-2 * time.Minute)},
			map[string]string{
				vault.TagRequestedAt:   "2026-08-01T09:15:00.123456789Z",
				vault.TagNextAttemptAt: "2026-08-01T10:15:00.123456789Z",
				vault.TagNoticedExpiry: "2026-09-01T12:30:45.123Z",
				vault.TagLastCallAt:    "2026-08-01T09:14:00.123456789Z",
				vault.TagAttempts:      "3",
				vault.TagRotationID:    "rot-2026-08-01T09:15:00Z",
				vault.TagServedRequest: "2026-08-01T09:13:00.123456789Z",
			}},
		{"zero fields untagged", vault.RotationState{NoticedExpiry: expiry},
			map[string]string{vault.TagNoticedExpiry: "2026-09-01T12:30:45.123Z"}},
		{"all zero", vault.RotationState{}, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := context.Background()
			// Start from a fully tagged secret so untagging is exercised too.
			full := tests[0].st
			if err := f.store.SaveChanges(ctx, secretName, vault.RotationState{}, full); err != nil {
				t.Fatalf("SaveChanges(full): %v", err)
			}
			if err := f.store.SaveChanges(ctx, secretName, full, tc.st); err != nil {
				t.Fatalf("SaveChanges: %v", err)
			}
			tags := f.fake.Tags(secretName)
			if len(tags) != len(tc.wantTags) {
				t.Errorf("tags = %v, want %v", tags, tc.wantTags)
			}
			for k, v := range tc.wantTags {
				if tags[k] != v {
					t.Errorf("tag %s = %q, want %q", k, tags[k], v)
				}
			}
			got, err := f.store.LoadState(ctx, secretName)
			if err != nil {
				t.Fatalf("LoadState: %v", err)
			}
			if got != tc.st {
				t.Fatalf("LoadState = %+v, want %+v", got, tc.st)
			}
		})
	}
}

func TestStateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		save *vault.RotationState
		tag  [2]string
	}{
		{name: "rotation id with illegal characters", save: &vault.RotationState{RotationID: "a,b;c"}},
		{name: "negative attempts", save: &vault.RotationState{Attempts: -1}},
		{name: "hand-edited time", tag: [2]string{vault.TagRequestedAt, "yesterday"}},
		{name: "hand-edited count", tag: [2]string{vault.TagAttempts, "three"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := context.Background()
			if tc.save != nil {
				if err := f.store.SaveChanges(ctx, secretName, vault.RotationState{}, *tc.save); err == nil {
					t.Fatal("SaveChanges accepted it")
				}
				if n := f.fake.Count(fakesm.OpTagResource) + f.fake.Count(fakesm.OpUntagResource); n != 0 {
					t.Fatalf("%d tag calls after a rejected state", n)
				}
				return
			}
			if _, err := f.fake.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(secretName),
				Tags: []types.Tag{{Key: aws.String(tc.tag[0]), Value: aws.String(tc.tag[1])}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.store.LoadState(ctx, secretName); !errors.Is(err, vault.ErrMalformed) {
				t.Fatalf("LoadState = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestSaveChangesOnASecretWithoutTagRoom: someone filled the secret with tags of their own. The
// failed tag write is told apart from a transient failure, so the caller can stop retrying.
func TestSaveChangesOnASecretWithoutTagRoom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		ownTags   int
		wantNoTag bool
	}{
		{"room left", vault.MaxTags - len(vault.StateTags), false},
		// The write below puts 7 state tags (the operator's 3 request tags are not among them).
		{"no room for this write", vault.MaxTags - 7 + 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := context.Background()
			var tags []types.Tag
			for i := range tc.ownTags {
				tags = append(tags, types.Tag{Key: aws.String(fmt.Sprintf("team-%d", i)), Value: aws.String("x")})
			}
			if _, err := f.fake.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(secretName), Tags: tags}); err != nil {
				t.Fatal(err)
			}
			full := vault.RotationState{RequestedAt: time.Unix(1, 0), NextAttemptAt: time.Unix(2, 0), NoticedExpiry: time.Unix(3, 0),
				LastCallAt: time.Unix(4, 0), Attempts: 1, RotationID: "r1", ServedRequest: time.Unix(5, 0)}
			err := f.store.SaveChanges(ctx, secretName, vault.RotationState{}, full)
			if got := errors.Is(err, vault.ErrNoTagRoom); got != tc.wantNoTag {
				t.Fatalf("SaveChanges = %v; ErrNoTagRoom %v, want %v", err, got, tc.wantNoTag)
			}
			info, derr := f.store.Describe(ctx, secretName)
			if derr != nil || info.OtherTags != tc.ownTags {
				t.Fatalf("Describe = %+v, %v; want %d tags of its own", info, derr, tc.ownTags)
			}
		})
	}
}
