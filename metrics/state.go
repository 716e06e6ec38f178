package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spapi-tools/lwa-rotator/rotator"
)

var (
	descExpiry = prometheus.NewDesc(ns+"_secret_expiry_timestamp_seconds",
		"When the application's current (AWSCURRENT) client secret expires; 0 when unknown.", []string{"application"}, nil)
	descPrevExpiry = prometheus.NewDesc(ns+"_previous_secret_expiry_timestamp_seconds",
		"When the previous (AWSPREVIOUS) client secret stops working; 0 when unknown.", []string{"application"}, nil)
	descNext = prometheus.NewDesc(ns+"_next_rotation_timestamp_seconds",
		"When the next rotation is planned (expiry minus renewBefore, or the next retry); 0 when unknown.", []string{"application"}, nil)
	descLastSuccess = prometheus.NewDesc(ns+"_last_success_timestamp_seconds",
		"When this process last promoted a verified new secret; 0 if it has not.", []string{"application"}, nil)
	descInFlight = prometheus.NewDesc(ns+"_rotation_in_flight",
		"1 while a rotate call was accepted and the new secret has not landed.", []string{"application"}, nil)
	descInFlightSince = prometheus.NewDesc(ns+"_rotation_in_flight_since_timestamp_seconds",
		"When the rotation now in flight was requested; 0 when none is.", []string{"application"}, nil)
	descAppReady = prometheus.NewDesc(ns+"_application_ready",
		"1 when the application's secret was read from the vault on the last attempt.", []string{"application"}, nil)
	descValid = prometheus.NewDesc(ns+"_current_secret_valid",
		"1 when LWA last accepted the AWSCURRENT secret (a daily probe or a rotation's token call), 0 when it answered invalid_client; absent until proven.", []string{"application"}, nil)
	descLastProbe = prometheus.NewDesc(ns+"_last_probe_timestamp_seconds",
		"When LWA last gave its verdict on the AWSCURRENT secret (0: not yet since start-up).", []string{"application"}, nil)
	descExternal = prometheus.NewDesc(ns+"_current_changed_externally_total",
		"Times AWSCURRENT was found on a version no replica of this daemon staged (stored by hand, or after a rotation in the Developer Console).", []string{"application"}, nil)
	descCanaryLast = prometheus.NewDesc(ns+"_canary_last_success_timestamp_seconds",
		"For a canary application, when its current secret was minted: its last completed rotation (0: unknown).", []string{"application"}, nil)
	descCanaryEvery = prometheus.NewDesc(ns+"_canary_interval_seconds",
		"For a canary application, how often it is rotated (canaryEvery).", []string{"application"}, nil)
	descPendingSince = prometheus.NewDesc(ns+"_pending_secret_since_timestamp_seconds",
		"Since when a new secret staged as AWSPENDING waits to be verified and promoted (0: none waiting).", []string{"application"}, nil)
	descReady = prometheus.NewDesc(ns+"_ready",
		"1 when the daemon is ready: configuration valid, queues and vault reachable.", nil, nil)
)

// stateCollector turns the rotator's snapshot into gauges at scrape time.
type stateCollector struct {
	state Snapshotter
	ready func() bool
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descExpiry, descPrevExpiry, descNext, descLastSuccess, descInFlight, descInFlightSince, descAppReady,
		descValid, descLastProbe, descExternal, descCanaryLast, descCanaryEvery, descPendingSince, descReady} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.state.Snapshot() {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, s.App)
		}
		// A timestamp that is not set says nothing an absent series does not: no rule or panel
		// reads its zero, and leaving it out keeps a scrape of a thousand applications small.
		stamp := func(d *prometheus.Desc, t time.Time) {
			if !t.IsZero() {
				gauge(d, ts(t))
			}
		}
		gauge(descExpiry, ts(s.CurrentExpiry))
		stamp(descPrevExpiry, s.PreviousExpiry)
		gauge(descNext, ts(s.NextRotation))
		stamp(descLastSuccess, s.LastSuccess)
		gauge(descInFlight, boolf(!s.InFlightSince.IsZero()))
		stamp(descInFlightSince, s.InFlightSince)
		gauge(descAppReady, boolf(s.Known && s.ConsecutiveFailures == 0))
		if s.CurrentValid != rotator.ValidityUnknown {
			gauge(descValid, boolf(s.CurrentValid == rotator.Valid))
		}
		stamp(descLastProbe, s.LastProbe)
		stamp(descPendingSince, s.PendingSince)
		ch <- prometheus.MustNewConstMetric(descExternal, prometheus.CounterValue, float64(s.ExternalChanges), s.App)
		if s.Canary {
			gauge(descCanaryLast, ts(s.CurrentMintedAt))
			gauge(descCanaryEvery, s.CanaryInterval.Seconds())
		}
	}
	ready := c.ready != nil && c.ready()
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, boolf(ready))
}

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
