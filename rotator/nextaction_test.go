package rotator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/rotator/window"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// The time the daemon says it will act is the time it acts. Each step reads both reports of it:
// the daemon's status (what lwa_rotator_next_rotation_timestamp_seconds exports) and the decision
// on a fresh vault read (what `lwa-rotator status` prints), then moves the clock to one nanosecond
// before that moment (no rotate call) and to the moment itself (the call), as the daemon's timer
// would.

// told is what the two reports say at the harness's current time.
type told struct {
	phase   Phase
	reason  Reason
	metric  time.Time // the daemon's Status.NextRotation
	command time.Time // Decide on a fresh read, as `status` computes it
	cmdPh   Phase
}

func (h *harness) told(t *testing.T) told {
	t.Helper()
	snap, err := (&vault.Store{SM: h.sm}).Read(context.Background(), secretID)
	if err != nil {
		t.Fatalf("reading the vault as status does: %v", err)
	}
	d := Decide(Input{App: h.app, Snapshot: snap}, h.set, h.clk.Now())
	s := h.status()
	return told{phase: s.Phase, reason: s.Reason, metric: s.NextRotation, command: d.NextActionAt, cmdPh: d.Phase}
}

// callsAt moves the clock to at, runs the pass the daemon's timer would run, and returns the
// rotate calls Amazon accepted so far.
func (h *harness) callsAt(at time.Time) int {
	h.clk.Set(at)
	h.r.Tick(context.Background())
	return h.amzn.calls()
}

func TestTheDaemonActsWhenItSaysItWill(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(40*day))

	// Idle: the renewal time, t0 + 10 days.
	h.r.Tick(context.Background())
	got := h.told(t)
	renew := t0.Add(10 * day)
	if got.phase != PhaseIdle || got.reason != ReasonRenewalScheduled || !got.metric.Equal(renew) || !got.command.Equal(renew) {
		t.Fatalf("idle: %+v, want idle, renewal-scheduled, metric and command at %v", got, renew)
	}
	if n := h.callsAt(renew.Add(-time.Nanosecond)); n != 0 {
		t.Fatalf("%d rotate calls a nanosecond before the renewal time", n)
	}

	// Due: the command says now, and the call is made now.
	h.clk.Set(renew)
	if got := h.told(t); got.cmdPh != PhaseDue || !got.command.Equal(renew) {
		t.Fatalf("at the renewal time the command says %s at %v, want due now", got.cmdPh, got.command)
	}
	if n := h.callsAt(renew); n != 1 {
		t.Fatalf("%d rotate calls at the renewal time, want 1", n)
	}

	// Requested: both name the watchdog's retry, a backoff after the await deadline.
	got = h.told(t)
	deadline := renew.Add(h.set.AwaitDeadline)
	retry := got.metric
	if got.phase != PhaseRequested || got.reason != ReasonAwaitingSecret || !got.command.Equal(retry) ||
		retry.Before(deadline.Add(h.set.RetryMin/2)) || retry.After(deadline.Add(h.set.RetryMin)) {
		t.Fatalf("requested: %+v, want requested, awaiting-secret, both at one moment within the first backoff after %v", got, deadline)
	}

	// The secret never comes: the watchdog fires at the deadline, and still names the same moment.
	if n := h.callsAt(deadline); n != 1 {
		t.Fatalf("%d rotate calls at the await deadline, want still 1", n)
	}
	got = h.told(t)
	if got.phase != PhaseOverdue || !got.metric.Equal(retry) || got.cmdPh != PhaseBackingOff || !got.command.Equal(retry) {
		t.Fatalf("after the watchdog: %+v, want overdue (the daemon) and backing off (the command), both at %v", got, retry)
	}
	if n := h.callsAt(retry.Add(-time.Nanosecond)); n != 1 {
		t.Fatalf("%d rotate calls a nanosecond before the retry", n)
	}
	if n := h.callsAt(retry); n != 2 {
		t.Fatalf("%d rotate calls at the announced retry, want 2", n)
	}

	// Pending: the second call's secret arrives while LWA is down; it is staged and retried
	// within seconds.
	h.amzn.fail(errors.New("LWA unreachable"), nil, false)
	_, msg := h.delivered()
	if res := h.handle(msg); !res.Delete || h.obs.outcomes(notifications.OutcomeStaged) != 1 {
		t.Fatalf("delivery while LWA is down: %+v, want the secret staged and the message deleted", res)
	}
	staged := h.world()
	h.r.Tick(context.Background())
	got = h.told(t)
	now := h.clk.Now()
	if got.phase != PhasePending || got.cmdPh != PhasePending || got.metric.Before(now) || got.metric.After(now.Add(vaultRetryMin)) ||
		got.command.Before(now) || got.command.After(now.Add(vaultRetryMin)) {
		t.Fatalf("pending: %+v, want pending, both within %v of %v", got, vaultRetryMin, now)
	}
	h.amzn.fail(nil, nil, false)
	h.callsAt(got.metric)
	if w := h.world(); w.pending || w.cur.ID == staged.cur.ID {
		t.Fatalf("after the announced retry the staged secret is not current: %+v", w)
	}

	// Idle again, on the promoted secret's renewal time; no further call.
	got = h.told(t)
	next := h.world().cur.Record.ExpiresAt.Add(-h.set.RenewBefore)
	if got.phase != PhaseIdle || !got.metric.Equal(next) || !got.command.Equal(next) || h.amzn.calls() != 2 {
		t.Fatalf("after the promotion: %+v and %d calls, want idle at %v and 2 calls", got, h.amzn.calls(), next)
	}
}

func TestACanaryRotatesWhenItSaysItWill(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, setup{expiry: t0.Add(180 * day), canary: true}) // minted at t0
	h.r.Tick(context.Background())
	got := h.told(t)
	at := t0.Add(7 * day)
	if got.phase != PhaseIdle || got.reason != ReasonCanaryScheduled || !got.metric.Equal(at) || !got.command.Equal(at) {
		t.Fatalf("canary: %+v, want idle, canary-scheduled, both at %v", got, at)
	}
	if n := h.callsAt(at.Add(-time.Nanosecond)); n != 0 {
		t.Fatalf("%d rotate calls before the canary's time", n)
	}
	if n := h.callsAt(at); n != 1 {
		t.Fatalf("%d rotate calls at the canary's time, want 1", n)
	}
	if got := h.told(t); got.phase != PhaseRequested || !got.metric.Equal(got.command) {
		t.Fatalf("after the canary's call: %+v, want requested, metric and command agreeing", got)
	}
}

func TestAManualRotationIsMadeAtOnceAndSaysSo(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(100*day))
	h.r.Tick(context.Background())
	if !h.r.Trigger("app") {
		t.Fatal("Trigger matched no application")
	}
	if n := h.callsAt(t0); n != 1 {
		t.Fatalf("%d rotate calls after SIGUSR1, want 1 at once", n)
	}
	if got := h.told(t); got.phase != PhaseRequested || !got.metric.Equal(got.command) || !got.metric.After(t0.Add(h.set.AwaitDeadline)) {
		t.Fatalf("after SIGUSR1: %+v, want requested, both at the watchdog's retry", got)
	}
}

func TestAnOperatorsRequestIsServedWhenTheCommandSays(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, setup{expiry: t0.Add(100 * day), requestPoll: time.Minute})
	ctx := h.running(t)
	waitFor(t, "the first pass", func() bool { return h.status().Known })
	h.request(t0)
	if got := h.told(t); got.cmdPh != PhaseDue || !got.command.Equal(t0) {
		t.Fatalf("after the request the command says %s at %v, want due at %v", got.cmdPh, got.command, t0)
	}
	// The request watch reads the tags within one requestPoll round; the call follows at once.
	for h.amzn.calls() == 0 && ctx.Err() == nil && h.clk.Now().Before(t0.Add(time.Minute)) {
		if next, ok := h.clk.Next(); ok && !next.After(t0.Add(time.Minute)) {
			h.clk.Set(next)
		}
		waitFor(t, "the daemon to settle", func() bool { return h.clk.Pending() > 0 || h.amzn.calls() > 0 })
	}
	waitFor(t, "the rotate call for the operator's request", func() bool { return h.amzn.calls() == 1 })
	if at := h.clk.Now(); at.After(t0.Add(time.Minute)) {
		t.Errorf("the request was served at %v, later than one requestPoll after it", at)
	}
	waitFor(t, "the status to say requested", func() bool { return h.status().Phase == PhaseRequested })
	if got := h.told(t); !got.metric.Equal(got.command) {
		t.Errorf("after the operator's request: %+v, want metric and command agreeing", got)
	}
}

// A due renewal waits for its rotation window and is made when it opens; one whose secret would
// come within the window's safety margin while waiting is made at once, outside, and counted.
func TestARenewalWaitsForItsWindowUnlessThatIsUnsafe(t *testing.T) {
	t.Parallel()
	// t0 is Sunday 2026-03-01 12:00 UTC; the window opens on Monday at 09:00 UTC.
	monday, problems := window.Parse("UTC", []string{"Mon 09:00-10:00"}, 7*day)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	opens := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

	h := newHarness(t, t0.Add(20*day))
	h.app.Window = monday
	h.restart()
	h.r.Tick(context.Background())
	got := h.told(t)
	if h.amzn.calls() != 0 || got.reason != ReasonWindowWait || !got.metric.Equal(opens) || !got.command.Equal(opens) ||
		!h.status().WindowOpensAt.Equal(opens) {
		t.Fatalf("a due renewal before the window: %d calls, %+v; want none, window-wait, both at %v", h.amzn.calls(), got, opens)
	}
	if n := h.callsAt(opens.Add(-time.Nanosecond)); n != 0 {
		t.Fatalf("%d rotate calls a nanosecond before the window opens", n)
	}
	if n := h.callsAt(opens); n != 1 || h.status().WindowOverrides != 0 {
		t.Fatalf("when the window opens: %d calls, %d overrides; want 1 call, none outside the window", n, h.status().WindowOverrides)
	}

	unsafe := newHarness(t, t0.Add(5*day))
	unsafe.app.Window = monday
	unsafe.restart()
	unsafe.r.Tick(context.Background())
	if n, s := unsafe.amzn.calls(), unsafe.status(); n != 1 || s.WindowOverrides != 1 {
		t.Fatalf("a secret 5 days from expiry, the window past the 7-day margin: %d calls, %d overrides; want 1 and 1", n, s.WindowOverrides)
	}
}
