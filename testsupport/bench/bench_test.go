package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestQuick runs the quick benchmark for one application end to end (both binaries, moto, the
// simulator, the proxies) and checks that every figure came out, so the benchmark cannot rot.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs moto and both binaries")
	}
	if _, err := exec.LookPath("moto_server"); err != nil {
		t.Skip("moto_server is not on PATH")
	}
	o := Quick()
	o.IdleWindow, o.Starts, o.Rotations, o.Backlog, o.PerMessage = 3*time.Second, 1, 2, 20, 2
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("quick run: %v", err)
	}
	// Every figure the issue lists, and the naive baseline beside each one it can have.
	want := map[string]bool{ // key → has a naive value
		"startup_readyz_ms": true, "startup_first_pass_ms": true, "startup_requests": true,
		"idle_requests_per_hour": true, "idle_cpu_seconds_per_hour": true, "idle_rss_mib": true,
		"rotation_sigusr1_requests": true, "rotation_expiry_requests": true,
		"scrape_bytes": false, "scrape_cpu_ms": false,
		"latency_p50_ms_0ms": true, "latency_p99_ms_0ms": true, "latency_p50_ms_20ms": true, "latency_p99_ms_20ms": true,
		"latency_served_floor_ratio_p99_20ms": true,
		"backlog_drain_s":                     true, "backlog_requests_per_message": true, "backlog_rss_idle_mib": true, "backlog_rss_after_mib": true,
		"backlog_rss_peak_mib": true, "message_requests_expiry": true, "message_requests_duplicate": true, "message_requests_stale": true,
	}
	got := map[string]Figure{}
	for _, f := range res.Figures {
		got[f.Key] = f
	}
	for key, naive := range want {
		f, ok := got[key]
		if !ok {
			t.Errorf("figure %s missing", key)
			continue
		}
		if naive && f.Naive == nil {
			t.Errorf("figure %s has no naive baseline", key)
		}
	}
	for _, key := range []string{"startup_requests", "rotation_sigusr1_requests", "rotation_expiry_requests", "scrape_bytes", "idle_rss_mib",
		"latency_served_floor_ratio_p99_20ms"} {
		if f := got[key]; f.Daemon <= 0 {
			t.Errorf("figure %s = %v, want a positive measurement", key, f.Daemon)
		}
	}
	var md, js bytes.Buffer
	if err := WriteMarkdown(&md, res); err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Figures {
		if !strings.Contains(md.String(), "| "+f.Name+" |") {
			t.Errorf("Markdown lacks a row for %s", f.Key)
		}
	}
	if err := WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Figures) != len(res.Figures) || back.Machine.Cores == 0 {
		t.Errorf("JSON does not round-trip (%v): %d figures, machine %+v", err, len(back.Figures), back.Machine)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, path, target, body, want string
	}{
		{"secrets manager", "POST", "/", "secretsmanager.DescribeSecret", "", "secretsmanager DescribeSecret"},
		{"sqs json", "POST", "/", "AmazonSQS.ReceiveMessage", "", "sqs ReceiveMessage"},
		{"kms", "POST", "/", "TrentService.DescribeKey", "", "kms DescribeKey"},
		{"query protocol", "POST", "/", "", "Action=ReceiveMessage&Version=2012-11-05", "query ReceiveMessage"},
		{"lwa", "POST", "/auth/o2/token", "", "grant_type=client_credentials", "lwa token"},
		{"rotate", "POST", "/applications/2023-11-30/clientSecret", "", "", "spapi rotateClientSecret"},
		{"anything else", "GET", "/moto-api/", "", "", "other GET /moto-api/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.target != "" {
				r.Header.Set("X-Amz-Target", tc.target)
			}
			got, err := classify(r)
			if err != nil || got != tc.want {
				t.Errorf("classify = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestProxyCountsAndDelays: the proxy counts each operation and adds its delay to every request.
func TestProxyCountsAndDelays(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer up.Close()
	p, err := NewProxy(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetDelay(40 * time.Millisecond)
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/", nil)
		req.Header.Set("X-Amz-Target", "AmazonSQS.DeleteMessage")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if d := time.Since(start); d < 40*time.Millisecond {
			t.Errorf("request took %s through a 40ms proxy", d)
		}
	}
	if got := p.Counts()["sqs DeleteMessage"]; got != 3 {
		t.Errorf("counted %d DeleteMessage, want 3", got)
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	v := []float64{5, 1, 4, 2, 3}
	if m := median(v); m != 3 {
		t.Errorf("median = %v, want 3", m)
	}
	if m := median([]float64{1, 2, 3, 4}); m != 2.5 {
		t.Errorf("even median = %v, want 2.5", m)
	}
	if p := percentile(v, 99); p != 5 {
		t.Errorf("p99 = %v, want 5", p)
	}
	if p := percentile(v, 50); p != 3 {
		t.Errorf("p50 = %v, want 3", p)
	}
}

// TestServedFloor: the floor at the servers' speed adds, to the injected delays, each floor
// request's upstream time once (the first inside the window) and the long poll's wait after the
// message became visible; requests before the window and repeated ones do not count.
func TestServedFloor(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(op string, sent, up int) Event {
		return Event{Op: op, Sent: at(sent), Upstream: at(up), Done: at(up + 10)}
	}
	tests := []struct {
		name   string
		delay  time.Duration
		events []Event
		want   time.Duration
	}{
		{"no requests", 20 * time.Millisecond, nil, floor(20 * time.Millisecond)},
		{"each floor request once, and the poll", 20 * time.Millisecond, []Event{
			ev("sqs ReceiveMessage", -5000, 3), // visible at 0, answered 3 ms later
			ev("secretsmanager DescribeSecret", 20, 22),
			ev("secretsmanager PutSecretValue", 40, 45),
			ev("lwa token", 60, 61),
			ev("secretsmanager UpdateSecretVersionStage", 80, 84),
			ev("sqs DeleteMessage", 100, 102),
		}, floor(20*time.Millisecond) + 3*time.Millisecond + 2*time.Millisecond + 5*time.Millisecond + time.Millisecond + 4*time.Millisecond + 2*time.Millisecond},
		{"before the window, repeats and other operations do not count", 0, []Event{
			ev("secretsmanager DescribeSecret", -30, -20),
			ev("secretsmanager DescribeSecret", 10, 12),
			ev("secretsmanager DescribeSecret", 20, 29),
			ev("secretsmanager UntagResource", 30, 39),
		}, 2 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := servedFloor(tc.delay, t0, tc.events); got != tc.want {
				t.Errorf("servedFloor = %v, want %v", got, tc.want)
			}
		})
	}
}
