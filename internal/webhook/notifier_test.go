package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
)

// The signing key of the tests, and a client secret that must never leave the rotator: the
// Promotion has no field for it, and no output may hold it.
const (
	testKey      = "webhook-test-key-0123456789abcdefghijklmnop"
	clientSecret = "amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// received is one request the receiver accepted as genuine.
type received struct {
	event  Event
	body   string
	header http.Header
}

// receiver verifies every request as a real receiver would and answers with status(n) for the
// n-th request (1-based). Requests with a bad signature are answered 401 and never recorded.
type receiver struct {
	srv    *httptest.Server
	clk    clock.Clock
	got    chan received
	forged atomic.Int64
	calls  atomic.Int64
}

func newReceiver(t *testing.T, clk clock.Clock, status func(n int64) int) *receiver {
	t.Helper()
	r := &receiver{clk: clk, got: make(chan received, 16)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.calls.Add(1)
		body, _ := io.ReadAll(req.Body)
		if !Verify([]byte(testKey), r.clk.Now(), 5*time.Minute, req.Header.Get(TimestampHeader), req.Header.Get(SignatureHeader), body) {
			r.forged.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		code := status(n)
		if code/100 == 2 {
			var ev Event
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil {
				t.Errorf("the event does not decode strictly: %v", err)
			}
			r.got <- received{event: ev, body: string(body), header: req.Header.Clone()}
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

type fixture struct {
	n    *Notifier
	clk  *fakeclock.Fake
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
	stop func()
}

// newFixture runs a Notifier on clk; tune, when set, adjusts its options before it starts.
func newFixture(t *testing.T, clk *fakeclock.Fake, tune func(*Options), targets ...Target) *fixture {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	f := &fixture{clk: clk, reg: prometheus.NewRegistry(), logs: logs}
	o := Options{Clock: f.clk, Log: zap.New(core), Registerer: f.reg, Rand: func() float64 { return 0 },
		RetryMin: 10 * time.Second, RetryMax: time.Minute, Timeout: 2 * time.Second}
	if tune != nil {
		tune(&o)
	}
	f.n = New(o)
	f.n.Configure(targets)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.n.Run(ctx); close(done) }()
	f.stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			f.stop()
		}
	})
	return f
}

func keyFile(t *testing.T, key string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hmac-key")
	if err := os.WriteFile(p, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func promotion(app, version string) rotator.Promotion {
	return rotator.Promotion{App: app, SecretID: "lwa/" + app, VersionID: version,
		ExpiresAt: start.Add(180 * 24 * time.Hour), PreviousExpiresAt: start.Add(7 * 24 * time.Hour), At: start}
}

func (f *fixture) counter(app string, r Result) float64 {
	return testutil.ToFloat64(f.n.metrics.deliveries.WithLabelValues(app, string(r)))
}

func (f *fixture) acknowledged(t *testing.T, app string) float64 {
	t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != "lwa_rotator_webhook_acknowledged" {
			continue
		}
		for _, m := range fam.GetMetric() {
			if m.GetLabel()[0].GetValue() == app {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// output is everything a human or a scraper could read: the log lines and the metrics.
func (f *fixture) output(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, e := range f.logs.All() {
		b.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			b.WriteString(" " + k + "=" + strings.ReplaceAll(strings.TrimSpace(toString(v)), "\n", " "))
		}
		b.WriteString("\n")
	}
	mfs, _ := f.reg.Gather()
	for _, m := range mfs {
		b.WriteString(m.String())
	}
	return b.String()
}

func toString(v any) string { out, _ := json.Marshal(v); return string(out) }

func assertNoSecret(t *testing.T, out string) {
	t.Helper()
	for _, s := range []string{clientSecret, testKey} {
		if strings.Contains(out, s) {
			t.Fatalf("a secret appears in the output:\n%s", out)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func next(t *testing.T, r *receiver) received {
	t.Helper()
	select {
	case got := <-r.got:
		return got
	case <-time.After(5 * time.Second):
		t.Fatal("the receiver got no event")
		return received{}
	}
}

func TestOneSignedEventPerPromotion(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(start)
	r := newReceiver(t, clk, func(int64) int { return http.StatusNoContent })
	f := newFixture(t, clk, nil, Target{App: "app", URL: r.srv.URL, Key: KeySource{File: keyFile(t, testKey)}})

	for _, v := range []string{"v1", "v2"} {
		f.n.Promoted(promotion("app", v))
		got := next(t, r)
		want := eventOf(promotion("app", v))
		if got.event != want {
			t.Errorf("event %+v, want %+v", got.event, want)
		}
		if got.header.Get(EventIDHeader) != want.EventID || got.header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", got.header)
		}
		for _, field := range []string{`"application":"app"`, `"secretId":"lwa/app"`, `"versionId":"` + v + `"`,
			`"expiresAt":"2026-08-28T12:00:00Z"`, `"previousExpiresAt":"2026-03-08T12:00:00Z"`, `"promotedAt":"2026-03-01T12:00:00Z"`} {
			if !strings.Contains(got.body, field) {
				t.Errorf("body lacks %s: %s", field, got.body)
			}
		}
		waitFor(t, "the acknowledgement counted", func() bool { return f.counter("app", Acknowledged) == map[string]float64{"v1": 1, "v2": 2}[v] })
	}
	if n := r.calls.Load(); n != 2 {
		t.Errorf("receiver called %d times for 2 promotions", n)
	}
	if r.forged.Load() != 0 {
		t.Errorf("%d requests failed verification", r.forged.Load())
	}
	if got := f.acknowledged(t, "app"); got != 1 {
		t.Errorf("acknowledged gauge %v, want 1", got)
	}
	if f.counter("app", Failed) != 0 {
		t.Errorf("failures counted for a receiver that always answered 204")
	}
	assertNoSecret(t, f.output(t))
}

func TestVerifyRefusesForgeriesAndReplays(t *testing.T) {
	t.Parallel()
	body := []byte(`{"application":"app"}`)
	sig := Sign([]byte(testKey), start, body)
	ts := "1772366400" // start
	for _, tc := range []struct {
		name         string
		key, ts, sig string
		body         []byte
		now          time.Time
		want         bool
	}{
		{"genuine", testKey, ts, sig, body, start, true},
		{"genuine, 4 minutes later", testKey, ts, sig, body, start.Add(4 * time.Minute), true},
		{"replayed after the tolerance", testKey, ts, sig, body, start.Add(6 * time.Minute), false},
		{"timestamp changed", testKey, "1772366460", sig, body, start, false},
		{"body changed", testKey, ts, sig, []byte(`{"application":"other"}`), start, false},
		{"other key", testKey + "x", ts, sig, body, start, false},
		{"no prefix", testKey, ts, strings.TrimPrefix(sig, "sha256="), body, start, false},
		{"not a number", testKey, "soon", sig, body, start, false},
	} {
		if got := Verify([]byte(tc.key), tc.now, 5*time.Minute, tc.ts, tc.sig, tc.body); got != tc.want {
			t.Errorf("%s: Verify = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFailingReceiverIsRetriedWithBackoffAndCounted(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(start)
	r := newReceiver(t, clk, func(n int64) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	f := newFixture(t, clk, nil, Target{App: "app", URL: r.srv.URL, Key: KeySource{File: keyFile(t, testKey)}})

	f.n.Promoted(promotion("app", "v1"))
	waitFor(t, "the failed attempt counted", func() bool { return f.counter("app", Failed) == 1 })
	if got := f.acknowledged(t, "app"); got != 0 {
		t.Errorf("acknowledged gauge %v while the event is failing, want 0", got)
	}
	// The retry waits on the injected clock: RetryMin (10s) with no jitter, halved by equal
	// jitter to 5s. Nothing is sent before the clock moves.
	if err := clk.WaitCreated(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if n := r.calls.Load(); n != 1 {
		t.Fatalf("retried before the backoff elapsed: %d calls", n)
	}
	clk.Advance(5 * time.Second)
	got := next(t, r)
	if got.event.VersionID != "v1" {
		t.Errorf("retried event %+v", got.event)
	}
	waitFor(t, "the acknowledgement counted", func() bool { return f.counter("app", Acknowledged) == 1 })
	if got := f.acknowledged(t, "app"); got != 1 {
		t.Errorf("acknowledged gauge %v after the retry succeeded, want 1", got)
	}
	if f.counter("app", Failed) != 1 || r.calls.Load() != 2 {
		t.Errorf("failed %v, calls %d; want 1 and 2", f.counter("app", Failed), r.calls.Load())
	}
	assertNoSecret(t, f.output(t))
}

func TestRetriesStopBeforeThePreviousSecretDies(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(start)
	r := newReceiver(t, clk, func(int64) int { return http.StatusServiceUnavailable })
	f := newFixture(t, clk, nil, Target{App: "app", URL: r.srv.URL, Key: KeySource{File: keyFile(t, testKey)}, RetryFor: 24 * time.Hour})
	p := promotion("app", "v1")
	p.PreviousExpiresAt = start.Add(time.Hour + 90*time.Second) // the deadline is 90s away
	f.n.Promoted(p)
	// Backoff with no jitter: 5s, 10s, 20s, 30s, 30s, so attempts go out at 0s, 5s, 15s, 35s
	// and 65s; the next would be at 95s, past the deadline, so the fifth failure gives up.
	for f.counter("app", Expired) == 0 {
		waitFor(t, "a retry timer or the give-up", func() bool { return clk.Pending() > 0 || f.counter("app", Expired) == 1 })
		if f.counter("app", Expired) == 1 {
			break
		}
		clk.Advance(5 * time.Second)
	}
	if got := clk.Now().Sub(start); got != 65*time.Second {
		t.Errorf("gave up at +%v, want +65s (the last attempt before the deadline)", got)
	}
	if f.counter("app", Failed) != 5 || r.calls.Load() != 5 {
		t.Errorf("failed %v, calls %d; want 5 and 5", f.counter("app", Failed), r.calls.Load())
	}
	if got := f.acknowledged(t, "app"); got != 0 {
		t.Errorf("acknowledged gauge %v after giving up, want 0", got)
	}
}

func TestHangingReceiverNeverDelaysTheRotator(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	// The hang outlasts the attempt's timeout, which outlasts the test.
	f := newFixture(t, fakeclock.New(start), func(o *Options) { o.Timeout = time.Minute },
		Target{App: "app", URL: srv.URL, Key: KeySource{File: keyFile(t, testKey)}})

	// Far more promotions than the queue holds: every call returns at once, the excess is dropped.
	done := make(chan struct{})
	go func() {
		for i := range 20 {
			f.n.Promoted(promotion("app", "v"+string(rune('a'+i))))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Promoted blocked on a hanging receiver")
	}
	waitFor(t, "the excess counted as dropped", func() bool { return f.counter("app", Dropped) >= float64(20-1-f.n.o.QueueSize) })
	if got := f.acknowledged(t, "app"); got != 0 {
		t.Errorf("acknowledged gauge %v with nothing acknowledged, want 0", got)
	}
	// Shutdown does not wait for the receiver: the request is cancelled and what is pending is
	// abandoned, with one log line.
	stopped := make(chan struct{})
	go func() { f.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return on shutdown while a request hung")
	}
	if f.counter("app", Abandoned) == 0 {
		t.Error("nothing counted as abandoned")
	}
	if n := f.logs.FilterMessageSnippet("abandoned on shutdown").Len(); n != 1 {
		t.Errorf("%d abandon log lines, want 1", n)
	}
	assertNoSecret(t, f.output(t))
}

func TestNewerPromotionSupersedesAFailingOne(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(start)
	r := newReceiver(t, clk, func(n int64) int {
		if n == 1 {
			return http.StatusBadGateway
		}
		return http.StatusAccepted
	})
	f := newFixture(t, clk, nil, Target{App: "app", URL: r.srv.URL, Key: KeySource{File: keyFile(t, testKey)}})
	f.n.Promoted(promotion("app", "v1"))
	waitFor(t, "the first attempt failing", func() bool { return f.counter("app", Failed) == 1 })
	if err := clk.WaitCreated(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	f.n.Promoted(promotion("app", "v2"))
	clk.Advance(5 * time.Second)
	// v1's retry goes out (the worker was asleep), fails nothing, then v2; or v2 supersedes v1.
	// Either way the last event the receiver acknowledges is v2 and the gauge says acknowledged.
	waitFor(t, "v2 acknowledged", func() bool { return f.acknowledged(t, "app") == 1 })
	var last Event
	for len(r.got) > 0 {
		last = (<-r.got).event
	}
	if last.VersionID != "v2" {
		t.Errorf("last acknowledged event %+v, want v2", last)
	}
}

type fakeSM struct {
	calls atomic.Int64
	value string
}

func (s *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s.calls.Add(1)
	if aws.ToString(in.SecretId) != "lwa/webhook-key" {
		return nil, &smNotFound{}
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(s.value)}, nil
}

type smNotFound struct{}

func (*smNotFound) Error() string {
	return "ResourceNotFoundException: Secrets Manager can't find the specified secret."
}

func TestKeyFromSecretsManagerAndReReadOnReload(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(start)
	r := newReceiver(t, clk, func(int64) int { return http.StatusNoContent })
	sm := &fakeSM{value: testKey}
	tg := Target{App: "app", URL: r.srv.URL, Key: KeySource{SecretID: "lwa/webhook-key"}}
	f := newFixture(t, clk, func(o *Options) { o.SM = sm }, tg)
	f.n.Promoted(promotion("app", "v1"))
	next(t, r)
	calls := sm.calls.Load()
	if calls != 1 {
		t.Errorf("key read %d times for one configuration, want 1", calls)
	}
	f.n.Configure([]Target{tg}) // SIGHUP
	waitFor(t, "the key read again after the reload", func() bool { return sm.calls.Load() == calls+1 })
}

func TestUnreadableKeyIsLoggedWithoutItsValue(t *testing.T) {
	t.Parallel()
	short := keyFile(t, "amzn1.oa2-cs.short") // too short, and secret-shaped: must not be echoed
	f := newFixture(t, fakeclock.New(start), func(o *Options) { o.SM = &fakeSM{value: testKey} },
		Target{App: "short", URL: "http://127.0.0.1:1/", Key: KeySource{File: short}},
		Target{App: "missing", URL: "http://127.0.0.1:1/", Key: KeySource{File: filepath.Join(t.TempDir(), "none")}},
		Target{App: "sm", URL: "http://127.0.0.1:1/", Key: KeySource{SecretID: "lwa/other"}})
	waitFor(t, "three key problems logged", func() bool {
		return f.logs.FilterMessageSnippet("signing key unavailable").Len() == 3
	})
	out := f.output(t)
	if strings.Contains(out, "oa2-cs") {
		t.Errorf("the key file's content appears in the output:\n%s", out)
	}
	for _, want := range []string{"hmacKeyFile: the signing key is shorter than 32 bytes", "hmacKeyFile: reading the signing key file", "hmacKeySecretId"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRemovedWebhookAbandonsAndLosesItsGauge(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fakeclock.New(start), nil, Target{App: "app", URL: "http://127.0.0.1:1/", Key: KeySource{File: keyFile(t, testKey)}})
	if got := f.acknowledged(t, "app"); got != 1 {
		t.Fatalf("gauge %v before any promotion, want 1", got)
	}
	f.n.Configure(nil)
	if got := f.acknowledged(t, "app"); got != -1 {
		t.Errorf("gauge %v for a removed webhook, want no series", got)
	}
	f.n.Promoted(promotion("app", "v1")) // no webhook: nothing happens, nothing blocks
	if f.counter("app", Dropped) != 0 {
		t.Error("an event for an application without a webhook was counted")
	}
}

func TestRedirectIsNotAnAcknowledgement(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(start)
	elsewhere := newReceiver(t, clk, func(int64) int { return http.StatusOK })
	srv := httptest.NewServer(http.RedirectHandler(elsewhere.srv.URL, http.StatusTemporaryRedirect))
	t.Cleanup(srv.Close)
	f := newFixture(t, clk, nil, Target{App: "app", URL: srv.URL, Key: KeySource{File: keyFile(t, testKey)}})
	f.n.Promoted(promotion("app", "v1"))
	waitFor(t, "the redirect counted as a failure", func() bool { return f.counter("app", Failed) == 1 })
	if n := elsewhere.calls.Load(); n != 0 {
		t.Errorf("the redirect was followed: %d requests reached its target", n)
	}
	if got := f.acknowledged(t, "app"); got != 0 {
		t.Errorf("acknowledged gauge %v after a redirect, want 0", got)
	}
}
