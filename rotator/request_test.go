package rotator

import (
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault"
)

// CanRequest by example: each row's answer is written out by hand (settings as in
// decision_examples_test.go: awaitDeadline 1h, one rotate call a minute).
func TestCanRequestExamples(t *testing.T) {
	t.Parallel()
	set := Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
		ProbeEvery: 24 * time.Hour, CanaryEvery: 7 * 24 * time.Hour, RotateInterval: time.Minute}
	now := ex("2026-06-01T12:00:00Z")
	const client = "amzn1.application-oa2-client.examples"
	app := App{Name: "app", ClientID: client, SecretID: "s"}
	current := vault.Version{ID: "v1", Record: vault.Record{ClientID: client, ExpiresAt: ex("2026-09-01T12:00:00Z")}}
	snap := func(st vault.RotationState) vault.Snapshot { return vault.Snapshot{Current: current, State: st} }
	pending := func(expires string) vault.Snapshot {
		s := snap(vault.RotationState{})
		s.Pending = &vault.Version{ID: "v2", Record: vault.Record{ClientID: client, ExpiresAt: ex(expires)}}
		return s
	}
	tests := []struct {
		name string
		snap vault.Snapshot
		want string // "" accepts
	}{
		{"nothing going on", snap(vault.RotationState{}), ""},
		{"another replica's claim on a due rotation", func() vault.Snapshot {
			s := snap(vault.RotationState{})
			s.ReadAt, s.Claim = now, &vault.Claim{Holder: "pod-b/2", ClaimedAt: ex("2026-06-01T11:59:30Z"), Until: ex("2026-06-01T12:04:30Z")}
			return s
		}(), "replica pod-b/2 claimed the due rotation and makes the rotate call (its claim lapses at 2026-06-01T12:04:30Z)"},
		{"a claim that lapsed", func() vault.Snapshot {
			s := snap(vault.RotationState{})
			s.ReadAt, s.Claim = now, &vault.Claim{Holder: "pod-b/2", ClaimedAt: ex("2026-06-01T11:54:30Z"), Until: ex("2026-06-01T11:59:30Z")}
			return s
		}(), ""},
		{"a replica holds the new secret", snap(vault.RotationState{InHand: vault.Lease{Until: ex("2026-06-01T12:10:00Z"), By: "pod-c/3"}}),
			"replica pod-c/3 holds a new secret and is storing it (its word lapses at 2026-06-01T12:10:00Z)"},
		{"a replica's word that lapsed", snap(vault.RotationState{InHand: vault.Lease{Until: ex("2026-06-01T12:00:00Z"), By: "pod-c/3"}}), ""},
		{"no AWSCURRENT", vault.Snapshot{}, "no AWSCURRENT version"},
		{"in flight within the await deadline", snap(vault.RotationState{RequestedAt: ex("2026-06-01T11:30:00Z"), LastCallAt: ex("2026-06-01T11:30:00Z"), RotationID: "r1"}),
			"already in flight since 2026-06-01T11:30:00Z (rotation r1)"},
		{"in flight past the await deadline (overdue)", snap(vault.RotationState{RequestedAt: ex("2026-06-01T10:30:00Z"), LastCallAt: ex("2026-06-01T10:30:00Z"), RotationID: "r1"}),
			"already in flight since 2026-06-01T10:30:00Z"},
		// The call's secret is current already: the rotation is over, whatever the tags still say.
		{"finished, tags not yet cleared", vault.Snapshot{Current: vault.Version{ID: "v2", Record: vault.Record{ClientID: client, ExpiresAt: ex("2026-11-28T11:30:00Z")}},
			State: vault.RotationState{RequestedAt: ex("2026-06-01T11:30:00Z"), LastCallAt: ex("2026-06-01T11:30:00Z"), RotationID: "r1"}}, ""},
		{"a newer secret staged", pending("2026-11-28T12:00:00Z"), "a new secret (version v2) is staged as AWSPENDING"},
		{"a stale secret staged", pending("2026-09-01T12:00:00Z"), "version v2 is staged as AWSPENDING but is not newer"},
		{"a request waits", snap(vault.RotationState{Request: vault.RotationRequest{At: ex("2026-06-01T11:59:59Z"), By: "ann@h"}}),
			"already requested at 2026-06-01T11:59:59Z by ann@h"},
		{"a served request left behind", snap(vault.RotationState{Request: vault.RotationRequest{At: ex("2026-06-01T11:00:00Z")}, ServedRequest: ex("2026-06-01T11:00:00Z")}), ""},
		{"an unreadable request", snap(vault.RotationState{Request: vault.RotationRequest{Invalid: true}}), ""},
		{"a rotate call 30 s ago", snap(vault.RotationState{LastCallAt: ex("2026-06-01T11:59:30Z")}),
			"Amazon allows one every 1m: ask again after 2026-06-01T12:00:30Z"},
		{"a rotate call exactly a minute ago", snap(vault.RotationState{LastCallAt: ex("2026-06-01T11:59:00Z")}), ""},
		// Backing off after a failed attempt: the request is written, and served when the backoff ends.
		{"backing off", snap(vault.RotationState{Attempts: 1, NextAttemptAt: ex("2026-06-01T12:05:00Z"), LastCallAt: ex("2026-06-01T10:00:00Z")}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, why := CanRequest(Input{App: app, Snapshot: tc.snap}, set, now)
			if tc.want == "" {
				if !ok || why != "" {
					t.Fatalf("CanRequest = %v, %q; want accepted", ok, why)
				}
				return
			}
			if ok || !strings.Contains(why, tc.want) {
				t.Fatalf("CanRequest = %v, %q; want refused saying %q", ok, why, tc.want)
			}
		})
	}
}
