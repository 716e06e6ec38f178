package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is the benchmark's counting, delay-injecting HTTP proxy. It sits between one client
// process and one upstream (moto or the simulator), counts every request by API operation and
// adds a fixed delay to each: half before the request goes upstream, half before the answer
// goes back, as a link's round trip would.
type Proxy struct {
	URL string

	delay atomic.Int64 // nanoseconds per request, both halves together
	srv   *http.Server

	mu     sync.Mutex
	counts map[string]int
	events []Event
	record bool
}

// Event is one answered request: when it went upstream, when the upstream answered and when the
// client got it. Upstream − Sent is the server's own time (its processing, and for a long poll the
// wait).
type Event struct {
	Op       string
	Sent     time.Time
	Upstream time.Time
	Done     time.Time
}

// NewProxy listens on a loopback port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("parsing the proxy target: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the proxy: %w", err)
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), counts: map[string]int{}}
	base := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute, DisableCompression: true}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = delayed{p: p, base: base}
	rp.ErrorLog = nil
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		if !errors.Is(err, context.Canceled) {
			http.Error(w, "bench proxy: "+err.Error(), http.StatusBadGateway)
		}
	}
	p.srv = &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// SetDelay sets the delay added to every request from now on.
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Delay is the delay added to every request.
func (p *Proxy) Delay() time.Duration { return time.Duration(p.delay.Load()) }

// Counts is a copy of the requests counted so far, by operation.
func (p *Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// Record starts (or stops) keeping events, dropping the ones kept so far.
func (p *Proxy) Record(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record, p.events = on, nil
}

// Events is a copy of the events kept since Record(true).
func (p *Proxy) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}

// Close stops the proxy.
func (p *Proxy) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}

type delayed struct {
	p    *Proxy
	base http.RoundTripper
}

func (d delayed) RoundTrip(r *http.Request) (*http.Response, error) {
	op, err := classify(r)
	if err != nil {
		return nil, err
	}
	d.p.mu.Lock()
	d.p.counts[op]++
	d.p.mu.Unlock()
	half := time.Duration(d.p.delay.Load()) / 2
	sleep(r.Context(), half)
	sent := time.Now()
	resp, err := d.base.RoundTrip(r)
	up := time.Now()
	if err != nil {
		return nil, err
	}
	sleep(r.Context(), half)
	d.p.mu.Lock()
	if d.p.record {
		d.p.events = append(d.p.events, Event{Op: op, Sent: sent, Upstream: up, Done: time.Now()})
	}
	d.p.mu.Unlock()
	return resp, nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// classify names the operation of a request: AWS JSON-protocol calls by X-Amz-Target
// ("secretsmanager DescribeSecret", "sqs ReceiveMessage", "kms DescribeKey"), AWS query-protocol
// calls by their Action, and the simulator's calls by path.
func classify(r *http.Request) (string, error) {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		svc, op, _ := strings.Cut(t, ".")
		switch svc {
		case "AmazonSQS":
			svc = "sqs"
		case "TrentService":
			svc = "kms"
		}
		return svc + " " + op, nil
	}
	switch {
	case r.URL.Path == "/auth/o2/token":
		return "lwa token", nil
	case r.URL.Path == "/applications/2023-11-30/clientSecret":
		return "spapi rotateClientSecret", nil
	}
	if r.Method == http.MethodPost && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return "", fmt.Errorf("reading a request body to classify it: %w", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		if v, err := url.ParseQuery(string(b)); err == nil && v.Get("Action") != "" {
			return "query " + v.Get("Action"), nil
		}
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return "query " + a, nil
	}
	return "other " + r.Method + " " + r.URL.Path, nil
}
