// Package rotator holds one state machine per configured application: it decides when a
// rotation is due, requests it, waits for the new secret, verifies it and promotes it, keeping the
// design's invariants (never lose a secret, never promote an unverified one, never go backwards).
package rotator

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// Options wires a Rotator. Vault, LWA and SPAPI are required.
type Options struct {
	Apps          []App
	Vault         Vault
	LWA           TokenMinter
	SPAPI         SecretRotator
	Clock         clock.Clock
	Log           *zap.Logger
	Observer      Observer
	RenewBefore   time.Duration // default 30 days
	AwaitDeadline time.Duration // default 1 hour
	// RetryMin and RetryMax bound the backoff between rotate attempts (defaults 1m, 1h: the
	// rotate API allows one call a minute).
	RetryMin, RetryMax time.Duration
	// Rand supplies jitter in [0,1); default math/rand/v2.
	Rand func() float64
	// RejectedRetry is how long a refused message stays hidden between deliveries (default 15m).
	RejectedRetry time.Duration
	// AllowedSenderIDs, when non-empty, refuses messages from any other SQS sender.
	AllowedSenderIDs []string
	// RequestPoll, when positive, is how often every application's tags are read for an
	// operator's rotation request (lwa-rotator rotate): one DescribeSecret per application per
	// round, spread evenly over the round, and never more than one a second in all, so a round
	// takes max(RequestPoll, number of applications × 1s). Zero reads requests only when an
	// application ticks anyway.
	RequestPoll time.Duration
	// Checkpoint, when set, is called at each named step of a rotation (see the Step* constants),
	// so the crash tests can kill the process exactly there.
	Checkpoint func(step string)
}

// Rotator runs the per-application state machines. Handle is its SQS entry point, Run its
// scheduler; both serialise on the application they touch.
type Rotator struct {
	clock clock.Clock
	log   *zap.Logger
	obs   Observer
	vault Vault
	lwa   TokenMinter
	spapi SecretRotator
	rand  func() float64
	// rejectedRetry: see Options.RejectedRetry.
	rejectedRetry time.Duration
	checkpoint    func(step string)
	senders       map[string]bool
	requestPoll   time.Duration

	mu            sync.Mutex // guards the fields below
	apps          map[string]*appState
	order         []string // client ids in configuration order, so every pass is repeatable
	renewBefore   time.Duration
	awaitDeadline time.Duration
	retryMin      time.Duration
	retryMax      time.Duration

	wake chan struct{}
}

// appState is one application's in-memory view. Its durable truth lives in the vault.
type appState struct {
	mu  sync.Mutex // held while the application is being worked on
	app App
	// manual: a manual rotation was asked for and has not yet produced a secret. Atomic, so
	// SIGUSR1 sets it without waiting for an application busy with a network call.
	manual atomic.Bool
	// retries counts this application's messages left for a retry since one was last finished.
	retries int

	status Status // guarded by Rotator.mu, read by Snapshot
}

// New builds a Rotator from o.
func New(o Options) *Rotator {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.RejectedRetry <= 0 {
		o.RejectedRetry = 15 * time.Minute
	}
	if o.Checkpoint == nil {
		o.Checkpoint = func(string) {}
	}
	r := &Rotator{
		clock: o.Clock, log: o.Log, obs: o.Observer, vault: o.Vault, lwa: o.LWA, spapi: o.SPAPI, rand: o.Rand,
		rejectedRetry: o.RejectedRetry, checkpoint: o.Checkpoint, senders: map[string]bool{}, requestPoll: o.RequestPoll,
		apps: map[string]*appState{}, wake: make(chan struct{}, 1),
	}
	for _, id := range o.AllowedSenderIDs {
		r.senders[id] = true
	}
	r.reconfigure(o.Apps, o.RenewBefore, o.AwaitDeadline, o.RetryMin, o.RetryMax)
	return r
}

// Reconfigure swaps the application list and timings (SIGHUP). Applications that stay keep their
// in-memory state; removed ones are forgotten; added ones are read from the vault on the next tick.
func (r *Rotator) Reconfigure(apps []App, renewBefore, awaitDeadline, retryMin, retryMax time.Duration) {
	r.reconfigure(apps, renewBefore, awaitDeadline, retryMin, retryMax)
	r.poke()
}

func (r *Rotator) reconfigure(apps []App, renewBefore, awaitDeadline, retryMin, retryMax time.Duration) {
	if renewBefore <= 0 {
		renewBefore = 30 * 24 * time.Hour
	}
	if awaitDeadline <= 0 {
		awaitDeadline = time.Hour
	}
	if retryMin <= 0 {
		retryMin = time.Minute
	}
	if retryMax < retryMin {
		retryMax = max(time.Hour, retryMin)
	}
	// Lock order is appState.mu, then Rotator.mu (a tick holds its application while it updates
	// the status). So the kept applications are updated only after Rotator.mu is released: an
	// application busy with a slow vault call must not hold up a reload, or deadlock it.
	type keep struct {
		st  *appState
		app App
	}
	var kept []keep
	r.mu.Lock()
	next := make(map[string]*appState, len(apps))
	order := make([]string, 0, len(apps))
	for _, a := range apps {
		order = append(order, a.ClientID)
		if old, ok := r.apps[a.ClientID]; ok {
			old.status.App = a.Name
			next[a.ClientID] = old
			kept = append(kept, keep{old, a})
			continue
		}
		next[a.ClientID] = &appState{app: a, status: Status{App: a.Name}}
	}
	r.apps, r.order = next, order
	r.renewBefore, r.awaitDeadline, r.retryMin, r.retryMax = renewBefore, awaitDeadline, retryMin, retryMax
	r.mu.Unlock()
	for _, k := range kept {
		k.st.mu.Lock()
		k.st.app = k.app
		k.st.mu.Unlock()
	}
}

// Trigger asks for a rotation now (SIGUSR1): of the named application, or of all when name is "".
// It reports whether any application matched.
func (r *Rotator) Trigger(name string) bool {
	// The names are read from the statuses under Rotator.mu alone: an application's own lock may
	// be held through a vault or LWA call of up to a minute, and the signal loop must not wait.
	r.mu.Lock()
	var hit []*appState
	for _, id := range r.order {
		if a := r.apps[id]; name == "" || a.status.App == name {
			hit = append(hit, a)
		}
	}
	r.mu.Unlock()
	for _, a := range hit {
		a.manual.Store(true)
	}
	r.poke()
	return len(hit) > 0
}

// Snapshot returns every application's status, for metrics and readiness.
func (r *Rotator) Snapshot() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.apps[id].status)
	}
	return out
}

// Run drives the schedule until ctx ends: it ticks every application, then sleeps on the
// injected clock until the earliest next action or until something pokes it. With RequestPoll
// set it also watches for operators' rotation requests.
func (r *Rotator) Run(ctx context.Context) error {
	if r.requestPoll > 0 {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { r.watchRequests(ctx) })
		defer wg.Wait()
		defer cancel()
	}
	for {
		next := r.Tick(ctx)
		if ctx.Err() != nil {
			return nil
		}
		t := r.clock.NewTimer(next.Sub(r.clock.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		case <-r.wake:
			t.Stop()
		}
	}
}

// Tick brings every application up to date once and returns when the next one wants to run.
// Run calls it in a loop; deterministic tests call it directly.
func (r *Rotator) Tick(ctx context.Context) time.Time {
	next := r.clock.Now().Add(idleRecheck)
	for _, a := range r.appList() {
		if ctx.Err() != nil {
			break
		}
		if at := r.tick(ctx, a); at.Before(next) {
			next = at
		}
	}
	return next
}

func (r *Rotator) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Rotator) appList() []*appState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*appState, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.apps[id])
	}
	return out
}

func (r *Rotator) lookup(clientID string) (*appState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.apps[clientID]
	return a, ok
}

func (r *Rotator) timings() (renewBefore, awaitDeadline time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.renewBefore, r.awaitDeadline
}

// setStatus applies f to a's status under the lock Snapshot reads with.
func (r *Rotator) setStatus(a *appState, f func(*Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&a.status)
}

// backoff is bounded exponential with equal jitter: attempt 1 waits about retryMin, doubling up
// to retryMax, never less than half the nominal delay (so replicas and restarts spread out).
func (r *Rotator) backoff(attempt int) time.Duration {
	r.mu.Lock()
	lo, hi := r.retryMin, r.retryMax
	r.mu.Unlock()
	return Backoff(attempt, lo, hi, r.rand)
}

// Backoff returns the delay before attempt (1-based) with equal jitter from rnd in [0,1).
func Backoff(attempt int, lo, hi time.Duration, rnd func() float64) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(rnd()*float64(d/2))
}
