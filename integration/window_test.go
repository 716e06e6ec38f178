package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// TestDueRotationWaitsForTheWindowThenRotatesOnce: the secret expires within renewBefore at
// start, so its renewal is due, but the rotation window opens only at the first whole minute a
// minute later (60 to 120 s). Two replicas agree on the wait: until the opening no rotate call
// is made, and the metric and status name the opening, reason window-wait; once it opens exactly
// one rotate call is made and its secret is promoted.
func TestDueRotationWaitsForTheWindowThenRotatesOnce(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{WindowOpensIn: time.Minute, VisibilityTimeout: 5 * time.Second})
	opens := env.WindowOpensAt
	if wait := time.Until(opens); wait < 55*time.Second || wait > 120*time.Second {
		t.Fatalf("the window opens in %s, want 60 to 120 s after the world was made", wait)
	}
	a := startDaemon(t, env)
	b := startDaemon(t, env)

	// (a) Before the opening: both replicas plan the rotate call for the opening.
	for name, d := range map[string]*daemonProc{"a": a, "b": b} {
		eventually(t, 30*time.Second, "the window's opening as replica "+name+"'s next rotation", func() bool {
			v, ok := d.scrape(t, `lwa_rotator_next_rotation_timestamp_seconds{application="demo-app"}`)
			return ok && v == float64(opens.Unix())
		})
	}
	line := appReport(t, statusJSON(t, env, 0), env.AppName)
	calls := env.Sim.RotateCalls(env.ClientID)
	if time.Now().After(opens) {
		t.Fatalf("the window opened at %s before the wait could be observed: the machine is too slow for this test", stampOf(opens))
	}
	if calls != 0 {
		t.Fatalf("%d rotate calls before the window opened, want 0", calls)
	}
	assertStatusMatchesVault(t, env, "waiting", line)
	oldDies := stampOf(opens.Add(7 * 24 * time.Hour)) // Amazon keeps the old secret seven days after the call
	if line.Phase != "idle" || line.Reason != "window-wait" || line.WindowOpensAt != stampOf(opens) || line.NextActionAt != stampOf(opens) ||
		line.OldSecretDiesAt != oldDies || line.OutsideWindow || line.Attention {
		t.Fatalf("waiting: status %+v; want idle, window-wait, windowOpensAt and nextActionAt %s, oldSecretDiesAt %s", line, stampOf(opens), oldDies)
	}
	wantNote := "opens at " + stampOf(opens) + ": the daemon calls rotate then, and the current secret then stops working at " + oldDies
	if !strings.Contains(strings.Join(line.Notes, "\n"), wantNote) {
		t.Errorf("waiting: notes %q lack %q", line.Notes, wantNote)
	}

	// (b) Once it opens: one rotate call, at or after the opening, and its secret promoted.
	if err := env.WaitRotated(context.Background(), time.Until(opens)+90*time.Second); err != nil {
		t.Fatal(err)
	}
	assertRotated(t, env, env.FirstSecret)
	if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
		t.Errorf("rotate endpoint accepted %d calls from two replicas, want 1", n)
	}
	for _, r := range env.Sim.Received() {
		if r.Endpoint == "rotate" && r.Time.Before(opens) {
			t.Errorf("a rotate call (status %d) at %s, before the window opened at %s", r.Status, stampOf(r.Time), stampOf(opens))
		}
	}
	newest, newestExpiry, _ := env.Sim.Newest(env.ClientID)
	if minted := newestExpiry.Add(-180 * 24 * time.Hour); minted.Before(opens) {
		t.Errorf("the new secret was minted at %s, before the window opened at %s", stampOf(minted), stampOf(opens))
	}
	// The next renewal waits for the window too: the same weekday and time, after the renewal time.
	after := appReport(t, statusJSON(t, env, 0), env.AppName)
	next, err := time.Parse(time.RFC3339Nano, after.WindowOpensAt)
	renewAt := newestExpiry.Add(-30 * 24 * time.Hour)
	if err != nil || after.Reason != "window-wait" || next.Weekday() != opens.Weekday() || next.Format("15:04:05") != opens.Format("15:04:05") ||
		next.Before(renewAt) || next.After(renewAt.Add(7*24*time.Hour)) {
		t.Errorf("after: status reason %q windowOpensAt %q; want window-wait at the window's next opening after the renewal time %s",
			after.Reason, after.WindowOpensAt, stampOf(renewAt))
	}
	assertNoSecret(t, a.output()+"\n"+b.output(), env.FirstSecret, newest)
}
