// Package metrics exposes the daemon's Prometheus metrics on the registry it is given: counters
// the daemon's parts move, and state gauges a collector computes at scrape time from the
// rotator's snapshot, so they are never stale and every configured application has its series
// from start-up. Handler serves the registry through promhttp.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/rotator"
)

const ns = "lwa_rotator"

// Snapshotter is the rotator's read side.
type Snapshotter interface{ Snapshot() []rotator.Status }

// Metrics holds every collector the daemon updates. It implements the observer interfaces of the
// rotator, the SQS consumer and the SP-API clients.
type Metrics struct {
	rotations      *prometheus.CounterVec // per application, each series from its first count
	notifications  *prometheus.CounterVec
	unknownVer     *prometheus.CounterVec
	viaSNS         *prometheus.CounterVec
	apiRequests    *prometheus.CounterVec
	apiDuration    *prometheus.HistogramVec
	polls          *prometheus.CounterVec
	deadLetters    *prometheus.GaugeVec
	reloadOK       prometheus.Gauge
	reloadTime     prometheus.Gauge
	configHash     prometheus.Gauge
	reloadRefusals *prometheus.CounterVec
	// The background units' reads (unit: UnitDeadLetterWatch, UnitRequestWatch).
	bgFailures    *prometheus.CounterVec
	bgLastSuccess *prometheus.GaugeVec
	bgInterval    *prometheus.GaugeVec

	reg     *prometheus.Registry
	handler http.Handler

	mu        sync.Mutex
	queueName map[string]string // queue URL → bounded label
}

// Option changes how New builds the metrics.
type Option func(*stateCollector)

// WithClock is the clock the state collector reads at scrape time, for the series that compare a
// moment with now (lwa_rotator_rotation_claim_held); without it the wall clock.
func WithClock(c clock.Clock) Option {
	return func(s *stateCollector) { s.clock = c }
}

// New registers every collector on reg: the counters, the state collector, build information
// and the Go and process collectors; Handler serves reg. version and revision are the build's
// stamps; an empty revision falls back to the VCS revision Go recorded, if any.
func New(reg *prometheus.Registry, state Snapshotter, ready func() bool, version, revision string, opts ...Option) *Metrics {
	sc := &stateCollector{state: state, ready: ready}
	for _, o := range opts {
		o(sc)
	}
	if sc.clock == nil {
		sc.clock = clock.Real{}
	}
	return newMetrics(reg, sc, version, revision)
}

// newMetrics takes the state as a collector so the benchmark can serve an older series set.
func newMetrics(reg *prometheus.Registry, state prometheus.Collector, version, revision string) *Metrics {
	m := &Metrics{
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "rotations_total",
			Help: "Rotation attempts by application and result (" + join(rotator.Results) + ").",
		}, []string{"application", "result"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "notifications_total",
			Help: "SQS notifications handled, by application (empty when unknown), type and outcome (" + join(notifications.Outcomes) + ").",
		}, []string{"application", "type", "outcome"}),
		unknownVer: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "notifications_unknown_version_total",
			Help: "Notifications accepted whose notificationVersion or payloadVersion is not the documented one, by type.",
		}, []string{"type"}),
		viaSNS: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "notifications_sns_envelope_total",
			Help: "Notifications that arrived wrapped in an SNS envelope, by type.",
		}, []string{"type"}),
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "api_requests_total",
			Help: "Outgoing API requests by API, operation and HTTP status code (0: no response).",
		}, []string{"api", "operation", "code"}),
		apiDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "api_request_duration_seconds",
			Help:    "Duration of outgoing API requests.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25},
		}, []string{"api", "operation"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "sqs_polls_total",
			Help: "SQS ReceiveMessage calls by queue (expiry, new_secret, shared) and result (success, error).",
		}, []string{"queue", "result"}),
		deadLetters: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "dead_letter_messages",
			Help: "Messages in each notification queue's dead-letter queue (refused messages, which may carry a secret).",
		}, []string{"queue"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "config_last_reload_successful",
			Help: "Whether the last configuration reload succeeded (1) or kept the old configuration (0).",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully.",
		}),
		configHash: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "config_hash",
			Help: "Hash of the running configuration (first 48 bits of the SHA-256 of its effective form); changes when a reload is applied.",
		}),
		reloadRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "config_reload_refusals_total",
			Help: "Configurations refused, by the part that refused (config: the file did not load; otherwise the part that owns the setting).",
		}, []string{"part"}),
		bgFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "background_read_failures_total",
			Help: "Failed reads of each background unit (" + UnitDeadLetterWatch + ": a dead-letter queue's depth; " + UnitRequestWatch + ": the rotation request tags).",
		}, []string{"unit"}),
		bgLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "background_last_success_timestamp_seconds",
			Help: "When each background unit last read successfully (" + UnitDeadLetterWatch + ": every dead-letter queue in one round), or started, before its first.",
		}, []string{"unit"}),
		bgInterval: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "background_interval_seconds",
			Help: "The longest each background unit waits between reads (queues.deadLetterInterval; requestPollInterval).",
		}, []string{"unit"}),
		queueName: map[string]string{},
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: ns, Name: "build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version", "revision", "goversion"})
	if revision == "" {
		revision = vcsRevision()
	}
	buildInfo.WithLabelValues(version, revision, runtime.Version()).Set(1)
	reg.MustRegister(state, m.rotations, m.notifications, m.unknownVer, m.viaSNS, m.apiRequests, m.apiDuration, m.polls, m.deadLetters,
		m.reloadOK, m.reloadTime, m.configHash, m.reloadRefusals, m.bgFailures, m.bgLastSuccess, m.bgInterval, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg = reg
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

// Handler serves /metrics: everything on the registry given to New, in the format and
// compression the scraper negotiates.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Gatherer gathers what Handler serves.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Init creates the counter series of the queues and of the daemon as a whole, so dashboards see
// zeros rather than missing series. No per-application counter is made in advance: a thousand
// applications' zeros were most of a scrape, and the alert rules see a series' first sample
// (deploy/prometheus/lwa-rotator.rules.yml), so each appears with its first count. The
// applications (apps) are no longer read: the state gauges cover them from start-up.
func (m *Metrics) Init(queues map[string]string) {
	for _, t := range notifications.Types {
		m.unknownVer.WithLabelValues(t)
		m.viaSNS.WithLabelValues(t)
	}
	m.notifications.WithLabelValues("", "unknown", string(notifications.OutcomeMalformed))
	m.notifications.WithLabelValues("", "unknown", string(notifications.OutcomeRejected))
	m.mu.Lock()
	defer m.mu.Unlock()
	for url, name := range queues {
		m.queueName[url] = name
		m.polls.WithLabelValues(name, "success")
		m.polls.WithLabelValues(name, "error")
	}
	for _, op := range [][3]string{{"lwa", "token", "200"}, {"spapi", "rotateClientSecret", "204"}} {
		m.apiRequests.WithLabelValues(op[0], op[1], op[2])
	}
}

// Rotation implements rotator.Observer.
func (m *Metrics) Rotation(app string, result rotator.Result) {
	m.rotations.WithLabelValues(app, string(result)).Inc()
}

// Notification implements notifications.OutcomeObserver.
func (m *Metrics) Notification(app, typ string, outcome notifications.Outcome) {
	m.notifications.WithLabelValues(app, typ, string(outcome)).Inc()
}

// NotificationFormat implements notifications.FormatObserver.
func (m *Metrics) NotificationFormat(typ string, unknownVersion, viaSNS bool) {
	if unknownVersion {
		m.unknownVer.WithLabelValues(typ).Inc()
	}
	if viaSNS {
		m.viaSNS.WithLabelValues(typ).Inc()
	}
}

// join lists a vocabulary for help text.
func join[T ~string](vs []T) string {
	out := ""
	for i, v := range vs {
		if i > 0 {
			out += ", "
		}
		out += string(v)
	}
	return out
}

// ObserveRequest implements spapi.Observer and the AWS middleware's observer.
func (m *Metrics) ObserveRequest(api, operation string, status int, d time.Duration) {
	m.apiRequests.WithLabelValues(api, operation, strconv.Itoa(status)).Inc()
	m.apiDuration.WithLabelValues(api, operation).Observe(d.Seconds())
}

// Polled implements notifications.Observer.
func (m *Metrics) Polled(queueURL string, _ int, err error) {
	m.mu.Lock()
	name, ok := m.queueName[queueURL]
	m.mu.Unlock()
	if !ok {
		name = "other"
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	m.polls.WithLabelValues(name, result).Inc()
}

// DeadLetters records the depth of a queue's dead-letter queue.
func (m *Metrics) DeadLetters(queue string, messages int) {
	m.deadLetters.WithLabelValues(queue).Set(float64(messages))
}

// The background units: loops that read AWS on their own schedule, each reporting on its reads
// so that a unit that stopped working shows even where the figures it keeps (a dead-letter
// queue's depth) stay at their last value.
const (
	UnitDeadLetterWatch = "dead_letter_watch" // notifications.DeadLetterWatcher
	UnitRequestWatch    = "request_watch"     // the rotator's watch for operators' rotation requests
)

// BackgroundUnit makes the series of a unit that starts at start and reads at least every
// interval. Its last success starts at start, so a unit that never reads successfully ages like
// one that stopped.
func (m *Metrics) BackgroundUnit(unit string, interval time.Duration, start time.Time) {
	m.bgFailures.WithLabelValues(unit)
	m.bgInterval.WithLabelValues(unit).Set(interval.Seconds())
	m.bgLastSuccess.WithLabelValues(unit).Set(ts(start))
}

// DeadLetterReadFailed implements notifications.DeadLetterObserver. The queue's depth gauge keeps
// its last value; the unit's last success tells its age.
func (m *Metrics) DeadLetterReadFailed(string) {
	m.bgFailures.WithLabelValues(UnitDeadLetterWatch).Inc()
}

// DeadLettersRead implements notifications.DeadLetterObserver: every depth gauge is fresh as of at.
func (m *Metrics) DeadLettersRead(at time.Time) {
	m.bgLastSuccess.WithLabelValues(UnitDeadLetterWatch).Set(ts(at))
}

// RequestWatchRead implements rotator.Observer: one read of the rotation request tags (a
// listing, or one secret's tags) ended at at. A read cut short by shutdown is no failure.
func (m *Metrics) RequestWatchRead(at time.Time, err error) {
	switch {
	case err == nil:
		m.bgLastSuccess.WithLabelValues(UnitRequestWatch).Set(ts(at))
	case !errors.Is(err, context.Canceled):
		m.bgFailures.WithLabelValues(UnitRequestWatch).Inc()
	}
}

// ConfigApplied records that a configuration with hash now runs (start-up or a reload).
func (m *Metrics) ConfigApplied(hash float64, at time.Time) {
	m.configHash.Set(hash)
	m.Reloaded(true, at)
}

// Reloaded records a configuration load attempt; a refused one keeps the running hash.
func (m *Metrics) Reloaded(ok bool, at time.Time) {
	if ok {
		m.reloadOK.Set(1)
		m.reloadTime.Set(float64(at.Unix()))
		return
	}
	m.reloadOK.Set(0)
}

// ConfigRefused counts a configuration refused by part (a fixed word from the daemon's code).
func (m *Metrics) ConfigRefused(part string) {
	m.reloadRefusals.WithLabelValues(part).Inc()
}

func vcsRevision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
