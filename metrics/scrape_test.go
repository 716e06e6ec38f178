package metrics

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/rotator"
)

// What Prometheus 3 sends by default (scrape_protocols: OpenMetrics 1.0.0 and 0.0.1, then the
// text formats); the daemon does not offer OpenMetrics, so it answers in text 0.0.4.
const (
	promAccept   = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
	protoAccept  = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6," + promAccept
	scrapeBudget = 500_000 // bytes, uncompressed, at 1,000 applications (issue 13)
)

// benchWorld is the state cmd/lwa-rotator-bench scrapes: n applications named as the sandbox
// names them, each read from the vault once, 150 days from expiry, and proven by the probe.
func benchWorld(n int) fixedSnapshot {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	out := make(fixedSnapshot, n)
	for i := range out {
		name := "demo-app"
		if i > 0 {
			name = fmt.Sprintf("demo-app-%d", i+1)
		}
		expiry := now.Add(150*24*time.Hour + time.Duration(i)*time.Millisecond)
		out[i] = rotator.Status{App: name, Known: true, CurrentExpiry: expiry, NextRotation: expiry.Add(-30 * 24 * time.Hour),
			CurrentValid: rotator.Valid, LastProbe: now.Add(time.Duration(i) * 37 * time.Millisecond)}
	}
	return out
}

// rotatedWorld is benchWorld after every application rotated once in this process: a previous
// secret, a last success, and the counters of an expiry notice, a request, a new secret and a
// success each (rotatedTraffic).
func rotatedWorld(n int) fixedSnapshot {
	out := benchWorld(n)
	for i := range out {
		out[i].PreviousExpiry = out[i].CurrentExpiry.Add(-180 * 24 * time.Hour)
		out[i].LastSuccess = out[i].LastProbe
	}
	return out
}

func rotatedTraffic(m *Metrics, apps []string) {
	for _, a := range apps {
		m.Notification(a, notifications.Types[0], notifications.OutcomeProcessed)
		m.Rotation(a, rotator.ResultRequested)
		m.Notification(a, notifications.Types[1], notifications.OutcomeProcessed)
		m.Rotation(a, rotator.ResultSuccess)
	}
}

// traffic moves the counters a running daemon has moved by the time it is scraped.
func traffic(m *Metrics, apps []string) {
	m.Init(map[string]string{"https://sqs/expiry": "expiry", "https://sqs/new": "new_secret"})
	for _, op := range [][2]string{{"secretsmanager", "DescribeSecret"}, {"secretsmanager", "GetSecretValue"}, {"sqs", "ReceiveMessage"},
		{"sqs", "GetQueueAttributes"}, {"kms", "DescribeKey"}, {"lwa", "token"}} {
		m.ObserveRequest(op[0], op[1], 200, 30*time.Millisecond)
	}
	m.Polled("https://sqs/expiry", 0, nil)
	m.Polled("https://sqs/new", 0, nil)
	m.DeadLetters("expiry", 0)
	m.DeadLetters("new_secret", 0)
	m.ConfigApplied(1234, time.Unix(1.7e9, 0))
	m.BackgroundUnit(UnitDeadLetterWatch, time.Minute, time.Unix(1.7e9, 0))
	m.BackgroundUnit(UnitRequestWatch, time.Minute, time.Unix(1.7e9, 0))
	m.DeadLettersRead(time.Unix(1.7e9+60, 0))
	m.RequestWatchRead(time.Unix(1.7e9+60, 0), nil)
}

func names(s fixedSnapshot) []string {
	out := make([]string, len(s))
	for i, st := range s {
		out[i] = st.App
	}
	return out
}

// current is the daemon's /metrics handler over the state.
func current(state fixedSnapshot, more ...func(*Metrics, []string)) http.Handler {
	m := New(prometheus.NewRegistry(), state, func() bool { return true }, "bench", "0000")
	for _, f := range append([]func(*Metrics, []string){traffic}, more...) {
		f(m, names(state))
	}
	return m.Handler()
}

// baseline is /metrics as it was before issue 13's scrape work: every application's state through
// client_golang's Gather (with rotation_in_flight, and current_changed_externally_total at 0),
// the 6 rotation results and 2 rejected-notification counters made in advance per application,
// and promhttp's handler, as the daemon serves it now.
func baseline(state fixedSnapshot, more ...func(*Metrics, []string)) http.Handler {
	m := newMetrics(prometheus.NewRegistry(), &oldStateCollector{state: state, ready: func() bool { return true }}, "bench", "0000")
	for _, f := range append([]func(*Metrics, []string){traffic}, more...) {
		f(m, names(state))
	}
	for _, a := range names(state) {
		for _, r := range rotator.Results {
			if r != rotator.ResultRequested {
				m.rotations.WithLabelValues(a, string(r))
			}
		}
		for _, t := range notifications.Types {
			m.notifications.WithLabelValues(a, t, string(notifications.OutcomeRejected))
		}
	}
	return m.Handler()
}

// oldStateCollector is the state collector before issue 13's scrape work, kept as the baseline.
type oldStateCollector struct {
	state Snapshotter
	ready func() bool
}

var oldDesc = func() map[string]*prometheus.Desc {
	out := map[string]*prometheus.Desc{}
	for _, n := range []string{"secret_expiry_timestamp_seconds", "previous_secret_expiry_timestamp_seconds", "next_rotation_timestamp_seconds",
		"last_success_timestamp_seconds", "rotation_in_flight", "rotation_in_flight_since_timestamp_seconds", "application_ready",
		"current_secret_valid", "last_probe_timestamp_seconds", "current_changed_externally_total", "canary_last_success_timestamp_seconds",
		"canary_interval_seconds", "pending_secret_since_timestamp_seconds"} {
		out[n] = prometheus.NewDesc(ns+"_"+n, "The help text of "+n+", as long as the daemon's.", []string{"application"}, nil)
	}
	out["ready"] = prometheus.NewDesc(ns+"_ready", "1 when the daemon is ready.", nil, nil)
	return out
}()

func (c *oldStateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range oldDesc {
		ch <- d
	}
}

func (c *oldStateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.state.Snapshot() {
		gauge := func(n string, v float64) {
			ch <- prometheus.MustNewConstMetric(oldDesc[n], prometheus.GaugeValue, v, s.App)
		}
		stamp := func(n string, t time.Time) {
			if !t.IsZero() {
				gauge(n, ts(t))
			}
		}
		gauge("secret_expiry_timestamp_seconds", ts(s.CurrentExpiry))
		stamp("previous_secret_expiry_timestamp_seconds", s.PreviousExpiry)
		gauge("next_rotation_timestamp_seconds", ts(s.NextRotation))
		stamp("last_success_timestamp_seconds", s.LastSuccess)
		gauge("rotation_in_flight", boolf(!s.InFlightSince.IsZero()))
		stamp("rotation_in_flight_since_timestamp_seconds", s.InFlightSince)
		gauge("application_ready", boolf(s.Known && s.ConsecutiveFailures == 0))
		if s.CurrentValid != rotator.ValidityUnknown {
			gauge("current_secret_valid", boolf(s.CurrentValid == rotator.Valid))
		}
		stamp("last_probe_timestamp_seconds", s.LastProbe)
		stamp("pending_secret_since_timestamp_seconds", s.PendingSince)
		ch <- prometheus.MustNewConstMetric(oldDesc["current_changed_externally_total"], prometheus.CounterValue, float64(s.ExternalChanges), s.App)
		if s.Canary {
			gauge("canary_last_success_timestamp_seconds", ts(s.CurrentMintedAt))
			gauge("canary_interval_seconds", s.CanaryInterval.Seconds())
		}
	}
	ch <- prometheus.MustNewConstMetric(oldDesc["ready"], prometheus.GaugeValue, boolf(c.ready()))
}

// scrape serves one request as Prometheus makes it (with gzip when asked) and returns the
// response and its body, decompressed.
func scrape(tb testing.TB, h http.Handler, accept string, gz bool) (*httptest.ResponseRecorder, []byte) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", accept)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		tb.Fatalf("scrape: status %d: %s", w.Code, w.Body)
	}
	if w.Header().Get("Content-Encoding") != "gzip" {
		return w, w.Body.Bytes()
	}
	r, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		tb.Fatalf("scrape: gzip: %v", err)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		tb.Fatalf("scrape: gunzip: %v", err)
	}
	return w, body
}

// BenchmarkScrape: one /metrics scrape through the daemon's handler, as Prometheus asks for it
// (gzip), beside the baseline in the same run. bytes/scrape is the uncompressed body,
// gzip-bytes/scrape what goes on the wire, cpu-ns/op the process's CPU (GC included) per scrape.
// "rotated" is the 1,000 applications after each rotated once in the process's life.
func BenchmarkScrape(b *testing.B) {
	type world struct {
		name          string
		cur, baseline http.Handler
	}
	var worlds []world
	for _, n := range []int{1, 100, 1000} {
		state := benchWorld(n)
		worlds = append(worlds, world{fmt.Sprintf("apps=%d", n), current(state), baseline(state)})
	}
	rotated := rotatedWorld(1000)
	worlds = append(worlds, world{"apps=1000-rotated", current(rotated, rotatedTraffic), baseline(rotated, rotatedTraffic)})
	for _, wd := range worlds {
		for _, tc := range []struct {
			name string
			h    http.Handler
		}{{"current", wd.cur}, {"baseline", wd.baseline}} {
			b.Run(wd.name+"/"+tc.name, func(b *testing.B) {
				_, body := scrape(b, tc.h, promAccept, false)
				var wire int
				cpu0, cpuOK := cpuTime()
				for b.Loop() {
					req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
					req.Header.Set("Accept", promAccept)
					req.Header.Set("Accept-Encoding", "gzip")
					w := httptest.NewRecorder()
					tc.h.ServeHTTP(w, req)
					wire = w.Body.Len()
				}
				if cpu1, ok := cpuTime(); ok && cpuOK {
					b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
				}
				b.ReportMetric(float64(len(body)), "bytes/scrape")
				b.ReportMetric(float64(wire), "gzip-bytes/scrape")
			})
		}
	}
}

// At 1,000 applications the scrape stays under issue 13's budget, compressed or not, and the
// baseline it replaced did not.
func TestScrapeOf1000ApplicationsIsUnder500KB(t *testing.T) {
	t.Parallel()
	state := benchWorld(1000)
	_, plain := scrape(t, current(state), promAccept, false)
	w, unzipped := scrape(t, current(state), promAccept, true)
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Errorf("Content-Encoding %q with gzip accepted, want gzip", w.Header().Get("Content-Encoding"))
	}
	if len(plain) >= scrapeBudget || len(unzipped) >= scrapeBudget {
		t.Errorf("scrape of 1,000 applications: %d bytes (%d gzipped and unzipped), want under %d", len(plain), len(unzipped), scrapeBudget)
	}
	if n := strings.Count(string(plain), `application="demo-app-1000"`); n != 5 {
		t.Errorf("demo-app-1000 has %d series, want 5 (expiry, next rotation, ready, valid, last probe)", n)
	}
	if _, old := scrape(t, baseline(state), promAccept, false); len(old) < scrapeBudget {
		t.Errorf("the baseline is %d bytes, under the budget: the benchmark compares with the wrong thing", len(old))
	}
}

// Every format the handler negotiates carries what Gather gathers: the text format Prometheus asks
// for (gzip-compressed when accepted), and protobuf when it is asked for first.
func TestHandlerServesTheRegistry(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 6, 1, 12, 0, 0, 123456789, time.UTC)
	state := fixedSnapshot{
		{App: "fresh"},
		{App: "settled", Known: true, CurrentExpiry: at, NextRotation: at.Add(-30 * 24 * time.Hour), CurrentValid: rotator.Valid, LastProbe: at},
		{App: "rotated", Known: true, CurrentExpiry: at, PreviousExpiry: at.Add(-time.Hour), NextRotation: at, LastSuccess: at, ExternalChanges: 2},
		{App: "busy", Known: true, ConsecutiveFailures: 3, InFlightSince: at, PendingSince: at.Add(time.Second), CurrentValid: rotator.Invalid},
		{App: "canary", Known: true, Canary: true, CanaryInterval: 168 * time.Hour, CurrentMintedAt: at},
	}
	m := New(prometheus.NewRegistry(), state, func() bool { return true }, "test", "0000")
	traffic(m, names(state))
	rotatedTraffic(m, names(state))
	m.Rotation("busy", rotator.ResultTimeout)
	m.Notification("", "unknown", notifications.OutcomeMalformed)
	gathered, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := func(families map[string]*dto.MetricFamily) map[string]int {
		out := map[string]int{}
		for name, f := range families {
			out[name] = len(f.GetMetric())
		}
		return out
	}
	want := map[string]*dto.MetricFamily{}
	for _, f := range gathered {
		want[f.GetName()] = f
	}

	w, body := scrape(t, m.Handler(), promAccept, true)
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want text 0.0.4", ct)
	}
	if ce := w.Header().Get("Content-Encoding"); ce != "gzip" {
		t.Errorf("Content-Encoding %q with gzip accepted, want gzip", ce)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	parsed, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the text scrape: %v", err)
	}
	// The Go collector's values move between two gathers, so the series are compared by count.
	if got, want := series(parsed), series(want); !maps.Equal(got, want) {
		t.Errorf("the text scrape has series %v, Gather %v", got, want)
	}

	w, _ = scrape(t, m.Handler(), protoAccept, false)
	if ct := w.Header().Get("Content-Type"); !strings.Contains(ct, "protobuf") {
		t.Fatalf("Content-Type %q with protobuf asked first, want protobuf", ct)
	}
	dec := expfmt.NewDecoder(bytes.NewReader(w.Body.Bytes()), expfmt.Format(w.Header().Get("Content-Type")))
	decoded := map[string]*dto.MetricFamily{}
	for {
		var f dto.MetricFamily
		if err := dec.Decode(&f); err != nil {
			break
		}
		decoded[f.GetName()] = &f
	}
	if got, want := series(decoded), series(want); !maps.Equal(got, want) {
		t.Errorf("the protobuf scrape has series %v, Gather %v", got, want)
	}
}

// An application name is escaped as the text format wants it (written out here by hand).
func TestScrapeEscapesApplicationNames(t *testing.T) {
	t.Parallel()
	state := fixedSnapshot{{App: `odd "name" \ with` + "\nnewline", Known: true}}
	m := New(prometheus.NewRegistry(), state, nil, "test", "0000")
	_, body := scrape(t, m.Handler(), promAccept, false)
	for _, line := range []string{
		`lwa_rotator_application_ready{application="odd \"name\" \\ with\nnewline"} 1`,
		`lwa_rotator_secret_expiry_timestamp_seconds{application="odd \"name\" \\ with\nnewline"} 0`,
		`lwa_rotator_ready 0`,
	} {
		if !strings.Contains(string(body), "\n"+line+"\n") {
			t.Errorf("the scrape lacks the line %s", line)
		}
	}
}
