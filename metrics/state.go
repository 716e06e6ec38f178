package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/rotator"
)

// family is one per-application state gauge (or counter), or the daemon's readiness.
type family struct {
	name string
	vt   prometheus.ValueType
	desc *prometheus.Desc
}

func newFamily(name, help string, vt prometheus.ValueType, labels ...string) *family {
	name = ns + "_" + name
	return &family{name: name, vt: vt, desc: prometheus.NewDesc(name, help, labels, nil)}
}

// The state's families. Their descriptions never change, so one set serves every registry.
var (
	famLastProbe = newFamily("last_probe_timestamp_seconds",
		"When LWA last gave its verdict on the AWSCURRENT secret (absent: not yet since start-up).", prometheus.GaugeValue, "application")
	famAppReady = newFamily("application_ready",
		"1 when the application's secret was read from the vault on the last attempt.", prometheus.GaugeValue, "application")
	famCanaryInterval = newFamily("canary_interval_seconds",
		"For a canary application, how often it is rotated (canaryEvery).", prometheus.GaugeValue, "application")
	famCanaryLast = newFamily("canary_last_success_timestamp_seconds",
		"For a canary application, when its current secret was minted: its last completed rotation (0: unknown).", prometheus.GaugeValue, "application")
	famExternal = newFamily("current_changed_externally_total",
		"Times AWSCURRENT was found on a version no replica of this daemon staged (stored by hand, or after a rotation in the Developer Console); absent until the first.", prometheus.CounterValue, "application")
	famValid = newFamily("current_secret_valid",
		"1 when LWA last accepted the AWSCURRENT secret (a daily probe or a rotation's token call), 0 when it answered invalid_client; absent until proven.", prometheus.GaugeValue, "application")
	famLastSuccess = newFamily("last_success_timestamp_seconds",
		"When this process last promoted a verified new secret; absent if it has not.", prometheus.GaugeValue, "application")
	famNext = newFamily("next_rotation_timestamp_seconds",
		"When the daemon will next act on the rotation: the rotate call (the renewal time or the rotation window's opening, a backoff's end, the watchdog's retry while a secret is awaited) or the next try at a staged secret; 0 when nothing is planned.", prometheus.GaugeValue, "application")
	famWindowOpens = newFamily("rotation_window_opens_timestamp_seconds",
		"When the rotation window a due scheduled rotation waits for opens; absent when none waits.", prometheus.GaugeValue, "application")
	famOutsideWindow = newFamily("rotations_outside_window_total",
		"Scheduled rotations this process started outside the rotation window, because waiting for it would have left less than its safety margin before the secret expired; absent until the first.", prometheus.CounterValue, "application")
	famPendingSince = newFamily("pending_secret_since_timestamp_seconds",
		"Since when a new secret staged as AWSPENDING waits to be verified and promoted (absent: none waiting).", prometheus.GaugeValue, "application")
	famPrevExpiry = newFamily("previous_secret_expiry_timestamp_seconds",
		"When the previous (AWSPREVIOUS) client secret stops working; absent when unknown.", prometheus.GaugeValue, "application")
	famInFlightSince = newFamily("rotation_in_flight_since_timestamp_seconds",
		"When the rotation now in flight (a rotate call accepted, its new secret not landed) was requested; absent when none is.", prometheus.GaugeValue, "application")
	famExpiry = newFamily("secret_expiry_timestamp_seconds",
		"When the application's current (AWSCURRENT) client secret expires; 0 when unknown.", prometheus.GaugeValue, "application")
	famClaimHeld = newFamily("rotation_claim_held",
		"1 while this process holds the claim on the application's due rotation (no other replica makes the rotate call until it lapses); absent otherwise.", prometheus.GaugeValue, "application")
	famReady = newFamily("ready",
		"1 when the daemon is ready: configuration valid, queues and vault reachable.", prometheus.GaugeValue)

	appFamilies = []*family{famLastProbe, famAppReady, famCanaryInterval, famCanaryLast, famExternal, famValid, famLastSuccess,
		famNext, famWindowOpens, famOutsideWindow, famPendingSince, famPrevExpiry, famInFlightSince, famExpiry, famClaimHeld}
)

// stateSeries calls emit for each series application s exports. Only what a rule or a panel
// reads is exported: a timestamp that is not set, or a counter still at zero, says nothing an
// absent series does not (the rules see a counter's first appearance; see
// deploy/prometheus/lwa-rotator.rules.yml), and leaving them out keeps a scrape of a thousand
// applications small. Whether a rotation is in flight is the presence of its start time. now is
// the scrape's moment: a claim counts as held only until it lapses, whether or not the rotator
// has cleared it yet.
func stateSeries(s rotator.Status, now time.Time, emit func(f *family, v float64)) {
	stamp := func(f *family, t time.Time) {
		if !t.IsZero() {
			emit(f, ts(t))
		}
	}
	stamp(famLastProbe, s.LastProbe)
	emit(famAppReady, boolf(s.Known && s.ConsecutiveFailures == 0))
	if s.Canary {
		emit(famCanaryInterval, s.CanaryInterval.Seconds())
		emit(famCanaryLast, ts(s.CurrentMintedAt))
	}
	if s.ExternalChanges > 0 {
		emit(famExternal, float64(s.ExternalChanges))
	}
	if s.CurrentValid != rotator.ValidityUnknown {
		emit(famValid, boolf(s.CurrentValid == rotator.Valid))
	}
	stamp(famLastSuccess, s.LastSuccess)
	emit(famNext, ts(s.NextRotation))
	stamp(famWindowOpens, s.WindowOpensAt)
	if s.WindowOverrides > 0 {
		emit(famOutsideWindow, float64(s.WindowOverrides))
	}
	stamp(famPendingSince, s.PendingSince)
	stamp(famPrevExpiry, s.PreviousExpiry)
	stamp(famInFlightSince, s.InFlightSince)
	emit(famExpiry, ts(s.CurrentExpiry))
	if now.Before(s.ClaimHeldUntil) {
		// Present only while held: a thousand applications' zeros would cost an eighth of the
		// scrape budget to say what an absent series says.
		emit(famClaimHeld, 1)
	}
}

// stateCollector turns the rotator's snapshot into metrics at scrape time: a state gauge is never
// stale, and an application's series come and go with the configuration.
type stateCollector struct {
	state Snapshotter
	ready func() bool
	clock clock.Clock
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range appFamilies {
		ch <- f.desc
	}
	ch <- famReady.desc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.clock.Now()
	for _, s := range c.state.Snapshot() {
		stateSeries(s, now, func(f *family, v float64) {
			ch <- prometheus.MustNewConstMetric(f.desc, f.vt, v, s.App)
		})
	}
	ch <- prometheus.MustNewConstMetric(famReady.desc, prometheus.GaugeValue, boolf(c.isReady()))
}

func (c *stateCollector) isReady() bool { return c.ready != nil && c.ready() }

func ts(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
