package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/backoff"
	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Target is one application's webhook.
type Target struct {
	App string
	URL string
	Key KeySource
	// RetryFor bounds how long after the promotion an event is retried.
	RetryFor time.Duration
}

// Options are the Notifier's collaborators; Clock and Registerer are required.
type Options struct {
	Clock      clock.Clock
	Log        *zap.Logger
	Registerer prometheus.Registerer
	// HTTP posts the events; nil uses http.DefaultClient (the daemon passes its hardened client).
	HTTP *http.Client
	// SM reads keys named by a secret id.
	SM SecretsManager
	// Rand jitters the backoff; nil uses math/rand/v2.
	Rand func() float64
	// RetryMin and RetryMax bound the backoff between attempts (defaults 5s and 10m).
	RetryMin, RetryMax time.Duration
	// Timeout bounds one attempt (default 10s): a receiver that hangs costs one timeout per try.
	Timeout time.Duration
	// QueueSize bounds the events waiting per application (default 4): past it a promotion's
	// event is dropped and counted, never waited for.
	QueueSize int
}

// expiryMargin stops retrying an hour before the previous secret dies: by then a consumer still
// on it is better served by the LWAPreviousSecretExpiresSoon alert than by a late event.
const expiryMargin = time.Hour

// DefaultRetryFor is how long an event is retried when its Target does not say.
const DefaultRetryFor = 6 * 24 * time.Hour

// Notifier delivers promotion events, one worker per application with a webhook. Promoted is its
// only entry point from the rotator and never waits.
type Notifier struct {
	o       Options
	metrics *metrics

	// workers is swapped whole by Configure, so Promoted reads it without a lock.
	workers atomic.Pointer[map[string]*worker]

	mu      sync.Mutex // serialises Configure with Run's start and stop; Promoted never takes it
	ctx     context.Context
	stopped bool
	wg      sync.WaitGroup
}

// New registers the webhook's metrics on o.Registerer and returns an idle Notifier: workers start
// with Run.
func New(o Options) *Notifier {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	// A redirect is not an acknowledgement: following one would send the signed event to an
	// address nobody configured, so a 3xx counts as a failed attempt. The copy shares the
	// transport (TLS settings, proxy, connection pool) and leaves the caller's client untouched.
	noRedirects := *o.HTTP
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.HTTP = &noRedirects
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 5 * time.Second
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(10*time.Minute, o.RetryMin)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 4
	}
	n := &Notifier{o: o, metrics: newMetrics()}
	n.workers.Store(&map[string]*worker{})
	o.Registerer.MustRegister(n.metrics.deliveries, n)
	return n
}

// Describe implements prometheus.Collector for the acknowledged gauge.
func (n *Notifier) Describe(ch chan<- *prometheus.Desc) { ch <- acknowledgedDesc }

// Collect implements prometheus.Collector: one acknowledged series per application with a webhook.
func (n *Notifier) Collect(ch chan<- prometheus.Metric) {
	for app, w := range *n.workers.Load() {
		v := 0.0
		if w.acked.Load() == w.latest.Load() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(acknowledgedDesc, prometheus.GaugeValue, v, app)
	}
}

// Configure sets the applications' webhooks (start-up and every reload). A webhook that stays
// keeps its queue and pending event; its URL and key source are replaced, and the key is read
// again. A removed one abandons what it had pending.
func (n *Notifier) Configure(targets []Target) {
	n.mu.Lock()
	defer n.mu.Unlock()
	old := *n.workers.Load()
	next := make(map[string]*worker, len(targets))
	for _, t := range targets {
		if t.RetryFor <= 0 {
			t.RetryFor = DefaultRetryFor
		}
		w, ok := old[t.App]
		if !ok {
			w = &worker{n: n, app: t.App, queue: make(chan queued, n.o.QueueSize), changed: make(chan struct{}, 1)}
			n.metrics.init(t.App)
		}
		w.target.Store(&target{Target: t})
		select {
		case w.changed <- struct{}{}:
		default:
		}
		next[t.App] = w
		if !ok && n.ctx != nil && !n.stopped {
			n.start(w)
		}
	}
	n.workers.Store(&next)
	for app, w := range old {
		if _, ok := next[app]; !ok && w.cancel != nil {
			w.cancel()
		}
	}
}

func (n *Notifier) start(w *worker) {
	ctx, cancel := context.WithCancel(n.ctx)
	w.cancel = cancel
	n.wg.Go(func() { w.run(ctx) })
}

// Run delivers until ctx ends, then abandons what is pending (saying so in the log) and returns
// once every worker has stopped. Pending events are not persisted: the promotion is durable in
// the vault, and a consumer that missed the event still has the refresh interval and the alerts.
func (n *Notifier) Run(ctx context.Context) {
	n.mu.Lock()
	n.ctx = ctx
	for _, w := range *n.workers.Load() {
		n.start(w)
	}
	n.mu.Unlock()
	<-ctx.Done()
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	n.wg.Wait()
}

// Promoted hands a promotion to its application's worker and returns at once; it is
// rotator.Options.Promoted, called with the application's work lock held.
func (n *Notifier) Promoted(p rotator.Promotion) {
	w := (*n.workers.Load())[p.App]
	if w == nil {
		return
	}
	q := queued{Event: eventOf(p), seq: w.latest.Add(1)}
	select {
	case w.queue <- q:
	default:
		n.metrics.count(p.App, Dropped)
		n.o.Log.Warn("webhook queue full: this promotion's event is dropped", zap.String("application", p.App),
			zap.String("version_id", p.VersionID), zap.String("result", string(Dropped)))
	}
}

// queued is an event with its place in the application's sequence of promotions.
type queued struct {
	Event
	seq uint64
}

// target is a Target with its key, read once per configuration.
type target struct {
	Target
	key atomic.Pointer[secret.Value]
}

func (t *target) keyFor(ctx context.Context, sm SecretsManager) (secret.Value, error) {
	if k := t.key.Load(); k != nil {
		return *k, nil
	}
	k, err := readKey(ctx, sm, t.Key)
	if err != nil {
		return secret.Value{}, fmt.Errorf("%s: %w", t.Key.field(), err)
	}
	t.key.Store(&k)
	return k, nil
}

type worker struct {
	n       *Notifier
	app     string
	target  atomic.Pointer[target]
	queue   chan queued
	changed chan struct{}
	cancel  context.CancelFunc // set by start, under Notifier.mu

	// latest is the sequence number of the newest promotion, acked that of the newest one
	// acknowledged: the gauge is 1 exactly when they are equal.
	latest, acked atomic.Uint64
}

func (w *worker) run(ctx context.Context) {
	log := w.n.o.Log.With(zap.String("application", w.app))
	for {
		select {
		case <-ctx.Done():
			w.abandon(log, 0)
			return
		case <-w.changed:
			// Read the key now, so a wrong key file or secret shows in the log at start-up or
			// reload rather than at the next promotion, months later.
			if _, err := w.target.Load().keyFor(ctx, w.n.o.SM); err != nil && ctx.Err() == nil {
				log.Error("webhook signing key unavailable; deliveries will fail until it is fixed", zap.Error(err))
			}
		case q := <-w.queue:
			if !w.deliver(ctx, log, q) {
				w.abandon(log, 1)
				return
			}
		}
	}
}

// abandon counts and logs the events left when the worker stops; inHand is the one it was on.
func (w *worker) abandon(log *zap.Logger, inHand int) {
	n := inHand
	for drained := false; !drained; {
		select {
		case <-w.queue:
			n++
		default:
			drained = true
		}
	}
	if n == 0 {
		return
	}
	for range n {
		w.n.metrics.count(w.app, Abandoned)
	}
	log.Warn("webhook deliveries abandoned on shutdown or removal; they are not persisted",
		zap.Int("events", n), zap.String("result", string(Abandoned)))
}

// deliver tries q until it is acknowledged, superseded or past its deadline; it reports false
// when ctx ended first.
func (w *worker) deliver(ctx context.Context, log *zap.Logger, q queued) bool {
	o := w.n.o
	log = log.With(zap.String("event_id", q.EventID), zap.String("version_id", q.VersionID))
	body, err := json.Marshal(q.Event)
	if err != nil {
		log.Error("encoding the webhook event", zap.Error(err))
		return true
	}
	for attempt := 1; ; attempt++ {
		t := w.target.Load()
		deadline := q.PromotedAt.Add(t.RetryFor)
		if !q.PreviousExpiresAt.IsZero() && q.PreviousExpiresAt.Add(-expiryMargin).Before(deadline) {
			deadline = q.PreviousExpiresAt.Add(-expiryMargin)
		}
		status, err := w.post(ctx, t, body, q.EventID)
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			w.acked.Store(q.seq)
			w.n.metrics.count(w.app, Acknowledged)
			log.Info("webhook acknowledged", zap.Int("attempt", attempt), zap.Int("status", status), zap.String("result", string(Acknowledged)))
			return true
		}
		w.n.metrics.count(w.app, Failed)
		wait := backoff.Equal(attempt, o.RetryMin, o.RetryMax, o.Rand)
		log.Warn("webhook delivery failed; retrying", zap.Int("attempt", attempt), zap.Int("status", status), zap.Error(err),
			zap.Duration("retry_in", wait), zap.String("result", string(Failed)))
		if len(w.queue) > 0 {
			w.n.metrics.count(w.app, Superseded)
			log.Info("webhook event superseded by a newer promotion", zap.String("result", string(Superseded)))
			return true
		}
		if o.Clock.Now().Add(wait).After(deadline) {
			w.n.metrics.count(w.app, Expired)
			log.Error("webhook never acknowledged; giving up (the deadline is retryFor after the promotion, or an hour before the previous secret expires)",
				zap.Int("attempts", attempt), zap.Time("deadline", deadline), zap.String("result", string(Expired)))
			return true
		}
		if !clock.Sleep(ctx, o.Clock, wait) {
			return false
		}
	}
}

var errNotAcknowledged = errors.New("the receiver did not answer 2xx")

// post makes one signed attempt. The error never holds the URL: a webhook URL may carry a token
// of the receiver's in its path.
func (w *worker) post(ctx context.Context, t *target, body []byte, eventID string) (int, error) {
	o := w.n.o
	key, err := t.keyFor(ctx, o.SM)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("building the request: the URL is not usable")
	}
	now := o.Clock.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lwa-rotator-webhook")
	req.Header.Set(EventIDHeader, eventID)
	req.Header.Set(TimestampHeader, fmt.Sprint(now.Unix()))
	req.Header.Set(SignatureHeader, Sign([]byte(key.Reveal()), now, body))
	resp, err := o.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("posting the event: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, errNotAcknowledged
	}
	return resp.StatusCode, nil
}
