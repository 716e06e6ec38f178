package rotator

import (
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator/window"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The decision by example: every row names its facts and its expected answer as literals,
// worked out by hand (times in UTC, Amazon's 180-day lifetime, the settings below), never by the
// code's own helpers. The grid in decide_test.go checks invariants over every combination; these
// rows pin what the answer is at each boundary.

func ex(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDecideExamples(t *testing.T) {
	t.Parallel()
	set := Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
		ProbeEvery: 24 * time.Hour, CanaryEvery: 7 * 24 * time.Hour, RotateInterval: time.Minute}
	now := ex("2026-06-01T12:00:00Z")
	const client = "amzn1.application-oa2-client.examples"
	app := App{Name: "app", ClientID: client, SecretID: "s"}
	canary := app
	canary.Canary = true
	current := func(expires string) vault.Version {
		v := vault.Version{ID: "v-current", Record: vault.Record{ClientID: client, ClientSecret: secret.New("cur")}}
		if expires != "" {
			v.Record.ExpiresAt = ex(expires)
		}
		return v
	}
	pending := func(clientID, expires string) *vault.Version {
		return &vault.Version{ID: "v-pending", Record: vault.Record{ClientID: clientID, ClientSecret: secret.New("new"), ExpiresAt: ex(expires)}}
	}
	type want struct {
		phase  Phase
		reason Reason
		next   string // "" for none
		expiry string
	}
	tests := []struct {
		name string
		in   Input
		want want
	}{
		{"idle until the renewal time",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z")}},
			want{PhaseIdle, "renewal-scheduled", "2026-08-02T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"one nanosecond before the renewal time",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-07-01T12:00:00.000000001Z")}},
			want{PhaseIdle, "renewal-scheduled", "2026-06-01T12:00:00.000000001Z", "2026-07-01T12:00:00.000000001Z"}},
		{"exactly at the renewal time",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-07-01T12:00:00Z")}},
			want{PhaseDue, "renewal-due", "2026-06-01T12:00:00Z", "2026-07-01T12:00:00Z"}},
		{"expiry unknown: nothing planned",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("")}},
			want{PhaseIdle, "expiry-unknown", "", ""}},
		{"an expiry notice earlier than the stored expiry makes it due",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
				State: vault.RotationState{NoticedExpiry: ex("2026-06-20T00:00:00Z")}}},
			want{PhaseDue, "renewal-due", "2026-06-01T12:00:00Z", "2026-06-20T00:00:00Z"}},
		{"a later expiry notice changes nothing",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
				State: vault.RotationState{NoticedExpiry: ex("2026-10-01T00:00:00Z")}}},
			want{PhaseIdle, "renewal-scheduled", "2026-08-02T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"due, but backing off after a failed attempt",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-06-20T00:00:00Z"),
				State: vault.RotationState{Attempts: 1, NextAttemptAt: ex("2026-06-01T12:05:00Z")}}},
			want{PhaseBackingOff, "renewal-due", "2026-06-01T12:05:00Z", "2026-06-20T00:00:00Z"}},
		{"idle, but the renewal time falls inside a backoff",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-07-01T12:03:00Z"),
				State: vault.RotationState{Attempts: 1, NextAttemptAt: ex("2026-06-01T12:05:00Z")}}},
			want{PhaseIdle, "renewal-scheduled", "2026-06-01T12:05:00Z", "2026-07-01T12:03:00Z"}},
		{"backing off after a lost secret: the watchdog's retry time",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
				State: vault.RotationState{LastCallAt: ex("2026-06-01T10:00:00Z"), Attempts: 1, NextAttemptAt: ex("2026-06-01T12:10:00Z"), RotationID: "r1"}}},
			want{PhaseBackingOff, "secret-owed", "2026-06-01T12:10:00Z", "2026-09-01T12:00:00Z"}},
		{"a lost secret whose backoff has passed is asked for again",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
				State: vault.RotationState{LastCallAt: ex("2026-06-01T10:00:00Z"), Attempts: 1, NextAttemptAt: ex("2026-06-01T11:59:00Z"), RotationID: "r1"}}},
			want{PhaseDue, "secret-owed", "2026-06-01T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"Amazon's one call a minute: 30 s after the last call",
			Input{App: app, Manual: true, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
				State: vault.RotationState{LastCallAt: ex("2026-06-01T11:59:30Z")}}},
			want{PhaseBackingOff, "manual", "2026-06-01T12:00:30Z", "2026-09-01T12:00:00Z"}},
		{"Amazon's one call a minute: exactly a minute after the last call",
			Input{App: app, Manual: true, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
				State: vault.RotationState{LastCallAt: ex("2026-06-01T11:59:00Z")}}},
			want{PhaseDue, "manual", "2026-06-01T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"Amazon's one call a minute: the current secret was minted 30 s ago, by a call",
			// 2026-11-28T11:59:30Z is 180 days after 2026-06-01T11:59:30Z.
			Input{App: app, Manual: true, Snapshot: vault.Snapshot{Current: current("2026-11-28T11:59:30Z")}},
			want{PhaseBackingOff, "manual", "2026-06-01T12:00:30Z", "2026-11-28T11:59:30Z"}},
		{"requested: the watchdog's retry is the next rotate call",
			// Await deadline 12:30; attempt 1's backoff is 30 s plus the jitter of "r1/1"
			// (FNV-1a: 0.0527037...) times 30 s = 31.581112375 s.
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
				State: vault.RotationState{RequestedAt: ex("2026-06-01T11:30:00Z"), LastCallAt: ex("2026-06-01T11:30:00Z"), RotationID: "r1"}}},
			want{PhaseRequested, "awaiting-secret", "2026-06-01T12:30:31.581112375Z", "2026-09-01T12:00:00Z"}},
		{"overdue: the watchdog fires 30 minutes late and retries a backoff after now",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
				State: vault.RotationState{RequestedAt: ex("2026-06-01T10:30:00Z"), LastCallAt: ex("2026-06-01T10:30:00Z"), RotationID: "r1"}}},
			want{PhaseOverdue, "secret-owed", "2026-06-01T12:00:31.581112375Z", "2026-09-01T12:00:00Z"}},
		{"finished: the latest call's secret is already current",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-11-28T11:45:00Z"),
				State: vault.RotationState{RequestedAt: ex("2026-06-01T11:30:00Z"), LastCallAt: ex("2026-06-01T11:30:00Z"), RotationID: "r1"}}},
			want{PhaseIdle, "renewal-scheduled", "2026-10-29T11:45:00Z", "2026-11-28T11:45:00Z"}},
		{"a newer pending secret is verified and promoted",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"), Pending: pending(client, "2026-11-28T12:00:00Z")}},
			want{PhasePending, "new-secret-staged", "2026-06-01T12:00:02.5Z", "2026-09-01T12:00:00Z"}},
		{"a pending secret with the current secret's very expiry is stale, never resumed",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"), Pending: pending(client, "2026-09-01T12:00:00Z")}},
			want{PhasePending, "stale-pending", "2026-06-01T12:00:02.5Z", "2026-09-01T12:00:00Z"}},
		{"a pending secret one nanosecond newer is resumed",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"), Pending: pending(client, "2026-09-01T12:00:00.000000001Z")}},
			want{PhasePending, "new-secret-staged", "2026-06-01T12:00:02.5Z", "2026-09-01T12:00:00Z"}},
		{"a pending secret for another client is stale",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"), Pending: pending("amzn1.application-oa2-client.other", "2026-11-28T12:00:00Z")}},
			want{PhasePending, "stale-pending", "2026-06-01T12:00:02.5Z", "2026-09-01T12:00:00Z"}},
		{"a canary minted exactly canaryEvery ago is due",
			Input{App: canary, Snapshot: vault.Snapshot{Current: current("2026-11-21T12:00:00Z")}},
			want{PhaseDue, "canary-due", "2026-06-01T12:00:00Z", "2026-11-21T12:00:00Z"}},
		{"a canary minted six days ago waits a day",
			Input{App: canary, Snapshot: vault.Snapshot{Current: current("2026-11-22T12:00:00Z")}},
			want{PhaseIdle, "canary-scheduled", "2026-06-02T12:00:00Z", "2026-11-22T12:00:00Z"}},
		{"SIGUSR1",
			Input{App: app, Manual: true, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z")}},
			want{PhaseDue, "manual", "2026-06-01T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"an operator's request",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
				State: vault.RotationState{Request: vault.RotationRequest{At: ex("2026-06-01T11:55:00Z"), By: "op"}}}},
			want{PhaseDue, "operator-request", "2026-06-01T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"an operator's request already served is not served again",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
				State: vault.RotationState{Request: vault.RotationRequest{At: ex("2026-06-01T11:55:00Z")}, ServedRequest: ex("2026-06-01T11:55:00Z")}}},
			want{PhaseIdle, "renewal-scheduled", "2026-08-02T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"an unreadable request is removed, not served",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
				State: vault.RotationState{Request: vault.RotationRequest{Invalid: true}}}},
			want{PhaseIdle, "renewal-scheduled", "2026-08-02T12:00:00Z", "2026-09-01T12:00:00Z"}},
	}
	// Replicas. The claim lease is the default 5 minutes: its holder may call in the first one.
	claim := func(holder, claimedAt, until string) *vault.Claim {
		return &vault.Claim{VersionID: "c-claim", Holder: holder, RotationID: "r-claimed", ClaimedAt: ex(claimedAt), Until: ex(until)}
	}
	readAt := func(in Input, at string) Input { in.Snapshot.ReadAt = ex(at); return in }
	due := Input{App: app, Manual: true, Holder: "pod-a/1", Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z")}}
	withClaim := func(c *vault.Claim) Input {
		in := due
		in.Snapshot.Claim = c
		return readAt(in, "2026-06-01T12:00:00Z")
	}
	overdue := vault.RotationState{RequestedAt: ex("2026-06-01T10:30:00Z"), LastCallAt: ex("2026-06-01T10:30:00Z"), RotationID: "r1"}
	inHand := func(st vault.RotationState, until string) vault.RotationState {
		st.InHand = vault.Lease{Until: ex(until), By: "pod-b/2"}
		return st
	}
	tests = append(tests, []struct {
		name string
		in   Input
		want want
	}{
		{"another replica's claim on the due rotation is waited for until it lapses",
			withClaim(claim("pod-b/2", "2026-06-01T11:59:30Z", "2026-06-01T12:04:30Z")),
			want{PhaseRequested, "claimed-by-replica", "2026-06-01T12:04:30Z", "2026-09-01T12:00:00Z"}},
		{"a claim that lapsed before the snapshot was read is taken over",
			withClaim(claim("pod-b/2", "2026-06-01T11:54:59Z", "2026-06-01T11:59:59Z")),
			want{PhaseDue, "manual", "2026-06-01T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"a claim lapsing the very instant the snapshot is read is taken over",
			withClaim(claim("pod-b/2", "2026-06-01T11:55:00Z", "2026-06-01T12:00:00Z")),
			want{PhaseDue, "manual", "2026-06-01T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"a claim still live when the snapshot was read holds, however late the decision",
			readAt(withClaim(claim("pod-b/2", "2026-06-01T11:55:00Z", "2026-06-01T12:00:00Z")), "2026-06-01T11:59:59.999999999Z"),
			want{PhaseRequested, "claimed-by-replica", "2026-06-01T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"this process's own claim, inside its first minute: the call goes ahead",
			withClaim(claim("pod-a/1", "2026-06-01T11:59:00.000000001Z", "2026-06-01T12:04:00.000000001Z")),
			want{PhaseDue, "manual", "2026-06-01T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"this process's own claim, exactly a minute old: too late to call on, so it waits for it to lapse",
			withClaim(claim("pod-a/1", "2026-06-01T11:59:00Z", "2026-06-01T12:04:00Z")),
			want{PhaseRequested, "claimed-by-replica", "2026-06-01T12:04:00Z", "2026-09-01T12:00:00Z"}},
		{"the operator commands hold no claim: every claim is another replica's",
			func() Input {
				in := withClaim(claim("pod-a/1", "2026-06-01T11:59:30Z", "2026-06-01T12:04:30Z"))
				in.Holder = ""
				return in
			}(),
			want{PhaseRequested, "claimed-by-replica", "2026-06-01T12:04:30Z", "2026-09-01T12:00:00Z"}},
		{"a secret in hand holds the watchdog back until the word lapses",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"), State: inHand(overdue, "2026-06-01T12:10:00Z")}},
			want{PhaseRequested, "secret-in-hand", "2026-06-01T12:10:00Z", "2026-09-01T12:00:00Z"}},
		{"a secret in hand whose word lapsed this instant: the watchdog acts",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"), State: inHand(overdue, "2026-06-01T12:00:00Z")}},
			want{PhaseOverdue, "secret-owed", "2026-06-01T12:00:31.581112375Z", "2026-09-01T12:00:00Z"}},
		{"a secret in hand holds back SIGUSR1 too",
			Input{App: app, Manual: true, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"), State: inHand(vault.RotationState{}, "2026-06-01T12:10:00Z")}},
			want{PhaseRequested, "secret-in-hand", "2026-06-01T12:10:00Z", "2026-09-01T12:00:00Z"}},
		{"a secret in hand changes nothing about a renewal months away",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"), State: inHand(vault.RotationState{}, "2026-06-01T12:10:00Z")}},
			want{PhaseIdle, "renewal-scheduled", "2026-08-02T12:00:00Z", "2026-09-01T12:00:00Z"}},
		{"a staged secret is finished whatever the in-hand word says",
			Input{App: app, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"), Pending: pending(client, "2026-11-28T12:00:00Z"),
				State: inHand(overdue, "2026-06-01T12:10:00Z")}},
			want{PhasePending, "new-secret-staged", "2026-06-01T12:00:02.5Z", "2026-09-01T12:00:00Z"}},
	}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := Decide(tc.in, set, now)
			var next, expiry time.Time
			if tc.want.next != "" {
				next = ex(tc.want.next)
			}
			if tc.want.expiry != "" {
				expiry = ex(tc.want.expiry)
			}
			if d.Phase != tc.want.phase || d.Reason != tc.want.reason || !d.NextActionAt.Equal(next) || !d.Expiry.Equal(expiry) {
				t.Errorf("Decide = phase %s, reason %q, next %s, expiry %s; want phase %s, reason %q, next %s, expiry %s",
					d.Phase, d.Reason, d.NextActionAt.Format(time.RFC3339Nano), d.Expiry.Format(time.RFC3339Nano),
					tc.want.phase, tc.want.reason, next.Format(time.RFC3339Nano), expiry.Format(time.RFC3339Nano))
			}
			if d.Reason != "" && d.Reason.Explain() == "" {
				t.Errorf("reason %q has no sentence for people", d.Reason)
			}
		})
	}
}

// The holder's own claim carries its rotation id into the intent, so a retry after a lost answer
// continues the rotation it claimed; another replica's claim makes no call at all.
func TestDecideUsesTheClaimItHolds(t *testing.T) {
	t.Parallel()
	set := Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
		ProbeEvery: 24 * time.Hour, CanaryEvery: 7 * 24 * time.Hour}
	now := ex("2026-06-01T12:00:00Z")
	snap := vault.Snapshot{ReadAt: now, Current: vault.Version{ID: "v1", Record: vault.Record{ClientID: "c", ExpiresAt: ex("2026-09-01T12:00:00Z")}},
		Claim: &vault.Claim{Holder: "pod-a/1", RotationID: "r-claimed", ClaimedAt: ex("2026-06-01T11:59:30Z"), Until: ex("2026-06-01T12:04:30Z")}}
	own := plan(facts{app: App{ClientID: "c"}, snap: snap, manual: true, holder: "pod-a/1"}, set, now, 0)
	if !own.request || own.claim == nil || own.intent.RotationID != "r-claimed" {
		t.Errorf("own claim: request %v, claim %v, intent rotation %q; want the call under rotation r-claimed", own.request, own.claim, own.intent.RotationID)
	}
	other := plan(facts{app: App{ClientID: "c"}, snap: snap, manual: true, holder: "pod-b/2", probeAt: ex("2026-06-02T00:00:00Z")}, set, now, 0)
	if other.request || other.claim != nil || !other.wakeAt.Equal(ex("2026-06-01T12:04:30Z")) {
		t.Errorf("another's claim: request %v, claim %v, wake %s; want no call and a look at 12:04:30", other.request, other.claim, other.wakeAt)
	}
}

// One replica's probe is the fleet's: a version proven lately is not proven again by another
// replica whose own time has come, and its verdict is published as this process's.
func TestProbeIsSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	set := Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
		ProbeEvery: 24 * time.Hour, CanaryEvery: 7 * 24 * time.Hour}
	now := ex("2026-06-01T12:00:00Z")
	cur := vault.Version{ID: "v1", Record: vault.Record{ClientID: "c", ExpiresAt: ex("2026-09-01T12:00:00Z")}}
	tests := []struct {
		name      string
		probe     vault.Probe
		wantProbe bool
		wantNext  string // with jitter 0: 0.9 of the interval after the probe that counts
	}{
		{"proven an hour ago by another replica", vault.Probe{At: ex("2026-06-01T11:00:00Z"), Valid: true, VersionID: "v1"}, false, "2026-06-02T08:36:00Z"},
		{"proven 21h35m ago: still fresh", vault.Probe{At: ex("2026-05-31T14:25:00Z"), Valid: true, VersionID: "v1"}, false, "2026-06-01T12:01:00Z"},
		{"proven exactly 21h36m ago: due", vault.Probe{At: ex("2026-05-31T14:24:00Z"), Valid: true, VersionID: "v1"}, true, "2026-06-02T09:36:00Z"},
		{"a verdict on another version does not count", vault.Probe{At: ex("2026-06-01T11:00:00Z"), Valid: true, VersionID: "v0"}, true, "2026-06-02T09:36:00Z"},
		{"never proven", vault.Probe{}, true, "2026-06-02T09:36:00Z"},
	}
	for _, tc := range tests {
		snap := vault.Snapshot{Current: cur, State: vault.RotationState{Probe: tc.probe}}
		a := plan(facts{app: App{ClientID: "c"}, snap: snap, probeAt: ex("2026-06-01T11:59:00Z")}, set, now, 0)
		if a.probe != tc.wantProbe || !a.nextProbe.Equal(ex(tc.wantNext)) {
			t.Errorf("%s: probe %v, next %s; want %v, %s", tc.name, a.probe, a.nextProbe.Format(time.RFC3339), tc.wantProbe, tc.wantNext)
		}
	}
	var s Status
	snap := vault.Snapshot{Current: cur, State: vault.RotationState{Probe: vault.Probe{At: ex("2026-06-01T11:00:00Z"), Valid: false, VersionID: "v1"}}}
	publish(&s, facts{snap: snap}, action{}, set, now)
	if s.CurrentValid != Invalid || !s.LastProbe.Equal(ex("2026-06-01T11:00:00Z")) {
		t.Errorf("another replica's verdict published as %v at %s; want invalid at 11:00", s.CurrentValid, s.LastProbe)
	}
}

// A secret that moved to a version the daemon did not stage is proven at once.
func TestDecideNoticesAnExternalChange(t *testing.T) {
	t.Parallel()
	set := Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
		ProbeEvery: 24 * time.Hour, CanaryEvery: 7 * 24 * time.Hour}
	now := ex("2026-06-01T12:00:00Z")
	snap := vault.Snapshot{Current: vault.Version{ID: "typed-by-hand", Record: vault.Record{ClientID: "c", ExpiresAt: ex("2026-09-01T12:00:00Z")}}}
	tests := []struct {
		known string
		want  bool
	}{
		{"", false},              // nothing seen yet: the first look is no change
		{"typed-by-hand", false}, // the same version as before
		{"v-before", true},
	}
	for _, tc := range tests {
		in := Input{App: App{ClientID: "c"}, Snapshot: snap, KnownCurrent: tc.known, ProbeAt: ex("2026-06-02T00:00:00Z")}
		d := Decide(in, set, now)
		if d.ExternalChange != tc.want {
			t.Errorf("known %q: ExternalChange = %v, want %v", tc.known, d.ExternalChange, tc.want)
		}
		if a := plan(facts{app: in.App, snap: snap, knownCurrent: tc.known, probeAt: in.ProbeAt}, set, now, 0); a.probe != tc.want {
			t.Errorf("known %q: probe now = %v, want %v", tc.known, a.probe, tc.want)
		}
	}
}

// Rotation windows, by example. Berlin is UTC+2 in summer (CEST) and UTC+1 in winter (CET);
// 2026-06-01 is a Monday, the clocks go forward on Sunday 2026-03-29 at 01:00 UTC and back on
// Sunday 2026-10-25 at 01:00 UTC.
func TestDecideWindowExamples(t *testing.T) {
	t.Parallel()
	set := Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
		ProbeEvery: 24 * time.Hour, CanaryEvery: 7 * 24 * time.Hour, RotateInterval: time.Minute}
	const client = "amzn1.application-oa2-client.windows"
	sched := func(open ...string) window.Schedule {
		s, problems := window.Parse("Europe/Berlin", open, 7*24*time.Hour)
		if len(problems) > 0 {
			t.Fatalf("window %q: %v", open, problems)
		}
		return s
	}
	app := func(w window.Schedule, canary bool) App {
		return App{Name: "app", ClientID: client, SecretID: "s", Window: w, Canary: canary}
	}
	cur := func(expires string) vault.Version {
		return vault.Version{ID: "v-current", Record: vault.Record{ClientID: client, ClientSecret: secret.New("cur"), ExpiresAt: ex(expires)}}
	}
	weekdays := sched("Mon-Fri 09:00-15:00")
	fromTuesday := sched("Tue-Fri 09:00-15:00")
	type want struct {
		phase   Phase
		reason  Reason
		next    string
		opens   string // WindowOpensAt; "" for none
		outside bool
		oldDies string
	}
	tests := []struct {
		name string
		now  string
		in   Input
		want want
	}{
		{"due inside the window starts now", "2026-06-01T12:00:00Z",
			Input{App: app(weekdays, false), Snapshot: vault.Snapshot{Current: cur("2026-07-01T12:00:00Z")}},
			want{PhaseDue, "renewal-due", "2026-06-01T12:00:00Z", "", false, "2026-06-08T12:00:00Z"}},
		{"due outside the window waits for Tuesday 09:00 Berlin", "2026-06-01T12:00:00Z",
			Input{App: app(fromTuesday, false), Snapshot: vault.Snapshot{Current: cur("2026-07-01T12:00:00Z")}},
			want{PhaseIdle, "window-wait", "2026-06-02T07:00:00Z", "2026-06-02T07:00:00Z", false, "2026-06-09T07:00:00Z"}},
		{"at the window's start (14:00 Berlin) it is open", "2026-06-01T12:00:00Z",
			Input{App: app(sched("Mon 14:00-15:00"), false), Snapshot: vault.Snapshot{Current: cur("2026-07-01T12:00:00Z")}},
			want{PhaseDue, "renewal-due", "2026-06-01T12:00:00Z", "", false, "2026-06-08T12:00:00Z"}},
		{"at the window's end (14:00 Berlin) it is closed: next Monday", "2026-06-01T12:00:00Z",
			Input{App: app(sched("Mon 12:00-14:00"), false), Snapshot: vault.Snapshot{Current: cur("2026-07-01T12:00:00Z")}},
			want{PhaseIdle, "window-wait", "2026-06-08T10:00:00Z", "2026-06-08T10:00:00Z", false, "2026-06-15T10:00:00Z"}},
		{"a window crossing midnight opens on its start day", "2026-06-01T12:00:00Z",
			Input{App: app(sched("Sun 22:00-02:00"), false), Snapshot: vault.Snapshot{Current: cur("2026-07-01T12:00:00Z")}},
			want{PhaseIdle, "window-wait", "2026-06-07T20:00:00Z", "2026-06-07T20:00:00Z", false, "2026-06-14T20:00:00Z"}},
		{"a window crossing midnight is open after midnight (Monday 01:00 Berlin)", "2026-05-31T23:00:00Z",
			Input{App: app(sched("Sun 22:00-02:00"), false), Snapshot: vault.Snapshot{Current: cur("2026-06-30T23:00:00Z")}},
			want{PhaseDue, "renewal-due", "2026-05-31T23:00:00Z", "", false, "2026-06-07T23:00:00Z"}},
		{"safety: the next window is past expiry minus 7 days, so it rotates now, outside", "2026-06-01T12:00:00Z",
			Input{App: app(fromTuesday, false), Snapshot: vault.Snapshot{Current: cur("2026-06-05T12:00:00Z")}},
			want{PhaseDue, "renewal-due", "2026-06-01T12:00:00Z", "", true, "2026-06-05T12:00:00Z"}},
		{"a renewal time on a Sunday is announced for Monday 09:00 Berlin", "2026-06-01T12:00:00Z",
			Input{App: app(weekdays, false), Snapshot: vault.Snapshot{Current: cur("2026-09-01T12:00:00Z")}},
			want{PhaseIdle, "window-wait", "2026-08-03T07:00:00Z", "2026-08-03T07:00:00Z", false, "2026-08-10T07:00:00Z"}},
		{"a canary waits for the window too", "2026-06-01T12:00:00Z",
			Input{App: app(fromTuesday, true), Snapshot: vault.Snapshot{Current: cur("2026-11-21T12:00:00Z")}},
			want{PhaseIdle, "window-wait", "2026-06-02T07:00:00Z", "2026-06-02T07:00:00Z", false, "2026-06-09T07:00:00Z"}},
		{"a lost secret's retry does not wait", "2026-06-01T12:00:00Z",
			Input{App: app(fromTuesday, false), Snapshot: vault.Snapshot{Current: cur("2026-09-01T12:00:00Z"),
				State: vault.RotationState{LastCallAt: ex("2026-06-01T10:00:00Z"), Attempts: 1, NextAttemptAt: ex("2026-06-01T11:59:00Z"), RotationID: "r1"}}},
			want{PhaseDue, "secret-owed", "2026-06-01T12:00:00Z", "", false, "2026-06-08T12:00:00Z"}},
		{"a rotation under way (an attempt failed) does not wait", "2026-06-01T12:00:00Z",
			Input{App: app(fromTuesday, false), Snapshot: vault.Snapshot{Current: cur("2026-07-01T12:00:00Z"),
				State: vault.RotationState{Attempts: 1, NextAttemptAt: ex("2026-06-01T11:59:00Z")}}},
			want{PhaseDue, "renewal-due", "2026-06-01T12:00:00Z", "", false, "2026-06-08T12:00:00Z"}},
		{"SIGUSR1 does not wait", "2026-06-01T12:00:00Z",
			Input{App: app(fromTuesday, false), Manual: true, Snapshot: vault.Snapshot{Current: cur("2026-09-01T12:00:00Z")}},
			want{PhaseDue, "manual", "2026-06-01T12:00:00Z", "", false, "2026-06-08T12:00:00Z"}},
		{"an operator's request does not wait", "2026-06-01T12:00:00Z",
			Input{App: app(fromTuesday, false), Snapshot: vault.Snapshot{Current: cur("2026-09-01T12:00:00Z"),
				State: vault.RotationState{Request: vault.RotationRequest{At: ex("2026-06-01T11:55:00Z")}}}},
			want{PhaseDue, "operator-request", "2026-06-01T12:00:00Z", "", false, "2026-06-08T12:00:00Z"}},
		{"spring forward: 02:30 Berlin does not exist, the window opens at 03:00 CEST", "2026-03-29T00:30:00Z",
			Input{App: app(sched("Sun 02:30-04:00"), false), Snapshot: vault.Snapshot{Current: cur("2026-04-18T00:30:00Z")}},
			want{PhaseIdle, "window-wait", "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z", false, "2026-04-05T01:00:00Z"}},
		{"fall back: 02:30 Berlin happens twice, the window opens at the first", "2026-10-25T00:00:00Z",
			Input{App: app(sched("Sun 02:30-03:30"), false), Snapshot: vault.Snapshot{Current: cur("2026-11-14T00:00:00Z")}},
			want{PhaseIdle, "window-wait", "2026-10-25T00:30:00Z", "2026-10-25T00:30:00Z", false, "2026-11-01T00:30:00Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := Decide(tc.in, set, ex(tc.now))
			var opens time.Time
			if tc.want.opens != "" {
				opens = ex(tc.want.opens)
			}
			if d.Phase != tc.want.phase || d.Reason != tc.want.reason || !d.NextActionAt.Equal(ex(tc.want.next)) ||
				!d.WindowOpensAt.Equal(opens) || d.OutsideWindow != tc.want.outside || !d.OldSecretDiesAt.Equal(ex(tc.want.oldDies)) {
				t.Errorf("Decide = %s %q next %s opens %s outside %v old dies %s; want %s %q next %s opens %s outside %v old dies %s",
					d.Phase, d.Reason, d.NextActionAt.Format(time.RFC3339), d.WindowOpensAt.Format(time.RFC3339), d.OutsideWindow, d.OldSecretDiesAt.Format(time.RFC3339),
					tc.want.phase, tc.want.reason, tc.want.next, tc.want.opens, tc.want.outside, tc.want.oldDies)
			}
		})
	}
}

// A SIGUSR1 is answered by a secret minted after it, whichever replica made the call.
func TestDecideManualOwedExamples(t *testing.T) {
	t.Parallel()
	signal := ex("2026-06-01T12:00:00Z")
	for _, tc := range []struct {
		expires string // the current secret's expiry: its mint time plus 180 days
		owed    bool
	}{
		{"", true}, // unknown mint time: only this process's call or promotion answers it
		{"2026-11-28T11:00:00Z", true},
		{"2026-11-28T11:59:59.999999999Z", true},
		{"2026-11-28T12:00:00Z", false},
		{"2026-11-28T12:05:00Z", false},
	} {
		var cur vault.Record
		if tc.expires != "" {
			cur.ExpiresAt = ex(tc.expires)
		}
		if got := manualOwed(signal, cur); got != tc.owed {
			t.Errorf("current expiring %q: owed %v, want %v", tc.expires, got, tc.owed)
		}
	}
}
