package metrics

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
)

type fixedSnapshot []rotator.Status

func (f fixedSnapshot) Snapshot() []rotator.Status { return f }

// The series rules and panels read as values exist from start-up; the timestamps that are only
// meaningful once set (previous expiry, last success, in flight since, last probe, pending since)
// appear when set, and the per-application counters with their first count.
func TestEverySeriesExistsFromStartUpAndLintsClean(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	expiry := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	m := New(reg, fixedSnapshot{{App: "app-a", Known: true, CurrentExpiry: expiry}, {App: "app-b"}}, func() bool { return true }, "1.2.3", "")
	m.Init(map[string]string{"https://q/e": "expiry", "https://q/n": "new_secret"})

	want := []string{
		"lwa_rotator_secret_expiry_timestamp_seconds",
		"lwa_rotator_next_rotation_timestamp_seconds",
		"lwa_rotator_application_ready", "lwa_rotator_ready", "lwa_rotator_notifications_total",
		"lwa_rotator_api_requests_total", "lwa_rotator_sqs_polls_total", "lwa_rotator_config_last_reload_successful",
		"lwa_rotator_config_last_reload_success_timestamp_seconds", "lwa_rotator_build_info",
	}
	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]int{}
	for _, f := range families {
		have[f.GetName()] = len(f.GetMetric())
	}
	for _, name := range want {
		if have[name] == 0 {
			t.Errorf("%s has no series at start-up", name)
		}
	}
	if n := have["lwa_rotator_notifications_total"]; n != 2 {
		t.Errorf("notifications_total has %d series, want 2 (the unattributed malformed and rejected)", n)
	}
	for _, unset := range []string{"lwa_rotator_previous_secret_expiry_timestamp_seconds", "lwa_rotator_last_success_timestamp_seconds",
		"lwa_rotator_rotation_in_flight_since_timestamp_seconds", "lwa_rotator_pending_secret_since_timestamp_seconds",
		"lwa_rotator_rotations_total", "lwa_rotator_current_changed_externally_total", "lwa_rotator_rotation_in_flight",
		"lwa_rotator_rotation_window_opens_timestamp_seconds", "lwa_rotator_rotations_outside_window_total"} {
		if have[unset] != 0 {
			t.Errorf("%s has %d series while unset, want none", unset, have[unset])
		}
	}
	problems, err := testutil.GatherAndLint(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	exp := `
# HELP lwa_rotator_secret_expiry_timestamp_seconds When the application's current (AWSCURRENT) client secret expires; 0 when unknown.
# TYPE lwa_rotator_secret_expiry_timestamp_seconds gauge
lwa_rotator_secret_expiry_timestamp_seconds{application="app-a"} 1.780272e+09
lwa_rotator_secret_expiry_timestamp_seconds{application="app-b"} 0
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(exp), "lwa_rotator_secret_expiry_timestamp_seconds"); err != nil {
		t.Error(err)
	}
}

func TestObserversMoveCounters(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := New(reg, fixedSnapshot{}, nil, "dev", "")
	m.Init(map[string]string{"https://q/e": "shared"})
	m.Rotation("a", rotator.ResultSuccess)
	m.Notification("a", "APPLICATION_OAUTH_CLIENT_NEW_SECRET", notifications.OutcomeStale)
	m.ObserveRequest("spapi", "rotateClientSecret", 429, time.Second)
	m.Polled("https://q/e", 0, errors.New("down"))
	m.Polled("https://unknown", 0, nil)
	m.Reloaded(false, time.Unix(0, 0))
	tests := []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.rotations.WithLabelValues("a", string(rotator.ResultSuccess)), 1},
		{m.notifications.WithLabelValues("a", "APPLICATION_OAUTH_CLIENT_NEW_SECRET", string(notifications.OutcomeStale)), 1},
		{m.apiRequests.WithLabelValues("spapi", "rotateClientSecret", "429"), 1},
		{m.polls.WithLabelValues("shared", "error"), 1},
		{m.polls.WithLabelValues("other", "success"), 1},
		{m.reloadOK, 0},
	}
	for i, tc := range tests {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("case %d: got %v, want %v", i, got, tc.want)
		}
	}
}

func TestBuildInfoCarriesTheStampedRevision(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	New(reg, fixedSnapshot{}, nil, "v1.2.3", "0123abcd")
	want := `
# HELP lwa_rotator_build_info Build information; the value is always 1.
# TYPE lwa_rotator_build_info gauge
lwa_rotator_build_info{goversion="` + runtime.Version() + `",revision="0123abcd",version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "lwa_rotator_build_info"); err != nil {
		t.Error(err)
	}
}

// The background units' series: made by BackgroundUnit, the last success moved by a read that
// succeeded (for the dead-letter watch, a round that read every queue), the failures by each
// failed read; a read cut short by shutdown is no failure, and a failed read leaves the depth
// gauge at its last value.
func TestBackgroundUnitsReportTheirReads(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	m := New(prometheus.NewRegistry(), fixedSnapshot{}, nil, "dev", "")
	m.BackgroundUnit(UnitDeadLetterWatch, time.Minute, start)
	m.BackgroundUnit(UnitRequestWatch, 5*time.Minute, start)

	m.DeadLetters("expiry", 3)
	m.DeadLettersRead(start.Add(time.Minute))
	m.DeadLetterReadFailed("expiry")
	m.DeadLetterReadFailed("expiry")

	m.RequestWatchRead(start.Add(5*time.Minute), nil)
	m.RequestWatchRead(start.Add(10*time.Minute), errors.New("AccessDenied"))
	m.RequestWatchRead(start.Add(11*time.Minute), fmt.Errorf("reading rotation state of secret lwa/a: %w", context.Canceled))

	want := `
# HELP lwa_rotator_background_interval_seconds The longest each background unit waits between reads (queues.deadLetterInterval; requestPollInterval).
# TYPE lwa_rotator_background_interval_seconds gauge
lwa_rotator_background_interval_seconds{unit="dead_letter_watch"} 60
lwa_rotator_background_interval_seconds{unit="request_watch"} 300
# HELP lwa_rotator_background_last_success_timestamp_seconds When each background unit last read successfully (dead_letter_watch: every dead-letter queue in one round), or started, before its first.
# TYPE lwa_rotator_background_last_success_timestamp_seconds gauge
lwa_rotator_background_last_success_timestamp_seconds{unit="dead_letter_watch"} 1.78027206e+09
lwa_rotator_background_last_success_timestamp_seconds{unit="request_watch"} 1.7802723e+09
# HELP lwa_rotator_background_read_failures_total Failed reads of each background unit (dead_letter_watch: a dead-letter queue's depth; request_watch: the rotation request tags).
# TYPE lwa_rotator_background_read_failures_total counter
lwa_rotator_background_read_failures_total{unit="dead_letter_watch"} 2
lwa_rotator_background_read_failures_total{unit="request_watch"} 1
# HELP lwa_rotator_dead_letter_messages Messages in each notification queue's dead-letter queue (refused messages, which may carry a secret).
# TYPE lwa_rotator_dead_letter_messages gauge
lwa_rotator_dead_letter_messages{queue="expiry"} 3
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "lwa_rotator_background_interval_seconds",
		"lwa_rotator_background_last_success_timestamp_seconds", "lwa_rotator_background_read_failures_total",
		"lwa_rotator_dead_letter_messages"); err != nil {
		t.Error(err)
	}
}

// A unit not started has no series: a daemon without dead-letter queues has no watch to report.
func TestBackgroundUnitsWithoutSeriesUntilStarted(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry(), fixedSnapshot{}, nil, "dev", "")
	m.BackgroundUnit(UnitRequestWatch, time.Minute, time.Unix(1e9, 0))
	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	started := 0
	for _, f := range families {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				switch {
				case l.GetName() != "unit":
				case l.GetValue() == UnitRequestWatch:
					started++
				default:
					t.Errorf("%s has a series for unit %q, which never started", f.GetName(), l.GetValue())
				}
			}
		}
	}
	if started != 3 {
		t.Errorf("the started unit has %d series, want 3 (interval, last success, failures)", started)
	}
}

// lwa_rotator_rotation_claim_held is judged at scrape time against the injected clock: 1 while
// the claim has not lapsed, absent from the moment it lapses (even before the rotator clears it),
// and absent without a claim.
func TestClaimHeldIsJudgedAtScrapeTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	clk := fakeclock.New(now)
	m := New(prometheus.NewRegistry(), fixedSnapshot{
		{App: "held", ClaimHeldUntil: now.Add(90 * time.Second)},
		{App: "lapsing", ClaimHeldUntil: now.Add(time.Second)},
		{App: "lapsed", ClaimHeldUntil: now.Add(-time.Second)},
		{App: "now", ClaimHeldUntil: now},
		{App: "none"},
	}, nil, "dev", "", WithClock(clk))
	const head = `
# HELP lwa_rotator_rotation_claim_held 1 while this process holds the claim on the application's due rotation (no other replica makes the rotate call until it lapses); absent otherwise.
# TYPE lwa_rotator_rotation_claim_held gauge
`
	for _, tc := range []struct {
		advance time.Duration
		want    string
	}{
		{0, head + `lwa_rotator_rotation_claim_held{application="held"} 1
lwa_rotator_rotation_claim_held{application="lapsing"} 1
`},
		{time.Second, head + `lwa_rotator_rotation_claim_held{application="held"} 1
`},
		{89 * time.Second, ""},
	} {
		clk.Advance(tc.advance)
		if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(tc.want), "lwa_rotator_rotation_claim_held"); err != nil {
			t.Errorf("at %s: %v", clk.Now().Format(time.TimeOnly), err)
		}
	}
}

// Without WithClock the collector reads the wall clock: a claim lapsing in 3000 is held, one that
// lapsed in 2000 is not.
func TestClaimHeldWithoutAClockReadsTheWallClock(t *testing.T) {
	t.Parallel()
	m := New(prometheus.NewRegistry(), fixedSnapshot{
		{App: "future", ClaimHeldUntil: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{App: "past", ClaimHeldUntil: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
	}, nil, "dev", "")
	want := `
# HELP lwa_rotator_rotation_claim_held 1 while this process holds the claim on the application's due rotation (no other replica makes the rotate call until it lapses); absent otherwise.
# TYPE lwa_rotator_rotation_claim_held gauge
lwa_rotator_rotation_claim_held{application="future"} 1
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "lwa_rotator_rotation_claim_held"); err != nil {
		t.Error(err)
	}
}
