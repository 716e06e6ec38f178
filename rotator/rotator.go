// Package rotator holds one state machine per configured application: it decides when a
// rotation is due, requests it, waits for the new secret, verifies it and promotes it, keeping the
// design's invariants (never lose a secret, never promote an unverified one, never go backwards).
//
// Each decision is a pure function of one vault snapshot and the clock (plan for the scheduler,
// judge for notifications); the executor in execute.go performs what they decide.
package rotator

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// Options wires a Rotator. Vault, LWA, SPAPI and valid Settings are required.
type Options struct {
	Apps     []App
	Settings Settings
	Vault    Vault
	LWA      TokenMinter
	SPAPI    SecretRotator
	Clock    clock.Clock
	Log      *zap.Logger
	Observer Observer
	// Rand supplies jitter in [0,1); default math/rand/v2.
	Rand func() float64
	// RequestPoll, when positive, is how often every application's tags are read for an
	// operator's rotation request (lwa-rotator rotate): one DescribeSecret per application per
	// round, spread evenly over the round, and never more than one a second in all, so a round
	// takes max(RequestPoll, number of applications × 1s). Zero reads requests only when an
	// application is planned anyway.
	RequestPoll time.Duration
	// Checkpoint, when set, is called at each Step of a rotation, so the crash tests can kill
	// the process exactly there.
	Checkpoint func(Step)
	// PassConcurrency is how many applications one scheduler pass works on at once (0 or 1: one
	// at a time, in configuration order, as deterministic tests need).
	PassConcurrency int
	// FirstPassDone, when set, is called once, when Run's first pass is over.
	FirstPassDone func()
	// Holder names this process in the claims it makes before a rotate call and in its word
	// that it holds a new secret: the pod, task or host, and something that tells this process
	// from an earlier one of the same name. It must be a legal tag value (letters, digits and
	// _ . : / = + - @). Empty: "lwa-rotator/" and a random id.
	Holder string
	// Promoted, when set, is told of every promotion once AWSCURRENT has moved (or a promotion
	// this process did not see is found done), so the applications that read the secret can be
	// notified. It is called with the application's work lock held: it must hand the event off
	// and return at once.
	Promoted func(Promotion)
}

// Promotion is what a consumer of the secret may learn of a promotion: names, the version and
// the expiry times, never the secret.
type Promotion struct {
	App, SecretID, VersionID     string
	ExpiresAt, PreviousExpiresAt time.Time
	At                           time.Time
}

// Rotator runs the per-application state machines. Receive is its notification entry point, Run
// its scheduler; both serialise on the application they touch, and nothing else waits.
type Rotator struct {
	clock       clock.Clock
	log         *zap.Logger
	obs         Observer
	vault       Vault
	lwa         TokenMinter
	spapi       SecretRotator
	rand        func() float64
	checkpoint  func(Step)
	promoted    func(Promotion)
	requestPoll time.Duration
	holder      string

	passConcurrency int
	firstPassDone   func()

	// reg is the application list and the settings, an immutable value swapped whole on reload:
	// readers never lock, and a reload never waits for a busy application.
	reg      atomic.Pointer[registry]
	reloadMu sync.Mutex // serialises Reconfigure calls; takes no other lock

	wake chan struct{}
}

type registry struct {
	byClient map[string]*appState
	order    []*appState // configuration order, so every pass is repeatable
	settings Settings
}

// appState is one application's in-memory view. Its durable truth lives in the vault.
type appState struct {
	// work is held while the application is being worked on, including its own network calls;
	// it is the only lock an application has, and no other lock is taken while it is held.
	work sync.Mutex
	app  atomic.Pointer[App]
	// manualAt is when a SIGUSR1 for this application arrived (unix nanoseconds; 0: none). It
	// asks for a secret minted after it: whichever replica's call mints one answers it (owed).
	manualAt atomic.Int64
	// dirty: something happened that the next pass must plan for (a trigger, a notice, a
	// request, a promotion), whatever nextAt says.
	dirty  atomic.Bool
	nextAt atomic.Int64 // unix nanoseconds of the next planned pass; 0: at once
	status atomic.Pointer[Status]

	// Guarded by work:
	// probeAt is when AWSCURRENT is next proven with LWA (zero before the first pass).
	probeAt time.Time
	// knownCurrent is the AWSCURRENT version this process last saw or promoted, so a version
	// moved there by someone else is noticed.
	knownCurrent string
	// resumeFailures counts the passes that could not finish a pending version, for backoff.
	resumeFailures int
	// counted is the version whose promotion this process last counted as a success.
	counted string
	// finishing is the version a message promoted whose bookkeeping waits for the message's
	// deletion (finishLater); a pass in between clears it and does the bookkeeping itself.
	finishing string
}

// New builds a Rotator from o.
func New(o Options) (*Rotator, error) {
	if err := o.Settings.validate(); err != nil {
		return nil, err
	}
	if o.Vault == nil || o.LWA == nil || o.SPAPI == nil {
		return nil, fmt.Errorf("rotator: Vault, LWA and SPAPI are required")
	}
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
	if o.Checkpoint == nil {
		o.Checkpoint = func(Step) {}
	}
	if o.Promoted == nil {
		o.Promoted = func(Promotion) {}
	}
	if o.Holder == "" {
		o.Holder = "lwa-rotator/" + newRotationID(o.Rand)
	}
	r := &Rotator{
		clock: o.Clock, log: o.Log, obs: o.Observer, vault: o.Vault, lwa: o.LWA, spapi: o.SPAPI, rand: o.Rand,
		checkpoint: o.Checkpoint, promoted: o.Promoted, requestPoll: o.RequestPoll, wake: make(chan struct{}, 1),
		passConcurrency: o.PassConcurrency, firstPassDone: o.FirstPassDone, holder: o.Holder,
	}
	r.reg.Store(&registry{byClient: map[string]*appState{}})
	r.reconfigure(o.Apps, o.Settings)
	return r, nil
}

// Reconfigure swaps the application list and settings (SIGHUP). Applications that stay keep
// their in-memory state; removed ones are forgotten; added ones are read on the next pass. It
// never waits for an application that is busy.
func (r *Rotator) Reconfigure(apps []App, s Settings) error {
	if err := s.validate(); err != nil {
		return err
	}
	r.reconfigure(apps, s)
	r.poke()
	return nil
}

func (r *Rotator) reconfigure(apps []App, s Settings) {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	old := r.reg.Load()
	next := &registry{byClient: make(map[string]*appState, len(apps)), settings: s}
	for _, a := range apps {
		st, ok := old.byClient[a.ClientID]
		if !ok {
			st = &appState{}
			st.status.Store(&Status{App: a.Name})
		}
		app := a
		st.app.Store(&app)
		st.setStatus(func(s *Status) { s.App = a.Name })
		st.dirty.Store(true)
		next.byClient[a.ClientID] = st
		next.order = append(next.order, st)
	}
	r.reg.Store(next)
}

// Trigger asks for a rotation now (SIGUSR1): of the named application, or of all when name is "".
// It reports whether any application matched. It takes no lock.
func (r *Rotator) Trigger(name string) bool {
	hit := false
	for _, a := range r.reg.Load().order {
		if name == "" || a.app.Load().Name == name {
			a.manualAt.Store(r.clock.Now().UnixNano())
			a.dirty.Store(true)
			hit = true
		}
	}
	r.poke()
	return hit
}

// Snapshot returns every application's status, for metrics and readiness. It takes no lock.
func (r *Rotator) Snapshot() []Status {
	order := r.reg.Load().order
	out := make([]Status, 0, len(order))
	for _, a := range order {
		out = append(out, *a.status.Load())
	}
	return out
}

// Run drives the schedule until ctx ends: each pass plans the applications that are due or were
// poked, then it sleeps on the injected clock until the earliest next pass or a poke. With
// RequestPoll set it also watches for operators' rotation requests.
func (r *Rotator) Run(ctx context.Context) error {
	if r.requestPoll > 0 {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { r.watchRequests(ctx) })
		defer wg.Wait()
		defer cancel()
	}
	for first := true; ; first = false {
		next := r.Tick(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if first && r.firstPassDone != nil {
			r.firstPassDone()
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

// Tick runs one pass over the applications that are due or were poked, and returns when the
// next one wants to run. An application busy with a message is left for the pass its message
// ends with. Run calls Tick in a loop; deterministic tests call it directly.
func (r *Rotator) Tick(ctx context.Context) time.Time {
	now := r.clock.Now()
	order := r.reg.Load().order
	var due []*appState
	for _, a := range order {
		if at := time.Unix(0, a.nextAt.Load()); a.dirty.Load() || !now.Before(at) {
			due = append(due, a)
		}
	}
	listed := r.listedFor(ctx, due)
	if r.passConcurrency <= 1 {
		for _, a := range due {
			if ctx.Err() != nil {
				break
			}
			r.tryPass(ctx, a, listed[a])
		}
	} else {
		// Applications are independent: a start-up over a thousand of them takes a fraction of
		// the time one by one would, each still worked on by one pass at a time.
		// A fixed set of workers rather than a goroutine per application: a thousand parked
		// goroutines cost megabytes of stack that stay with the process after start-up.
		work := make(chan *appState)
		var wg sync.WaitGroup
		for range min(r.passConcurrency, len(due)) {
			wg.Go(func() {
				for a := range work {
					if ctx.Err() == nil {
						r.tryPass(ctx, a, listed[a])
					}
				}
			})
		}
		for _, a := range due {
			work <- a
		}
		close(work)
		wg.Wait()
	}
	next := now.Add(idleRecheck)
	for _, a := range order {
		if at := time.Unix(0, a.nextAt.Load()); at.Before(next) {
			next = at
		}
	}
	return next
}

// tryPass runs a pass unless the application is busy (its message's end pokes the scheduler).
// listed, when its Listed is set, is the application's snapshot from this pass's listing.
func (r *Rotator) tryPass(ctx context.Context, a *appState, listed vault.Snapshot) {
	if !a.work.TryLock() {
		a.dirty.Store(true)
		return
	}
	defer a.work.Unlock()
	dirty := a.dirty.Swap(false) // an event from here on marks it for the next pass
	if listed.Listed {
		if next, ok := r.planListed(a, listed, dirty); ok {
			a.nextAt.Store(next.UnixNano())
			return
		}
	}
	a.nextAt.Store(r.pass(ctx, a).UnixNano())
}

// settings returns the running settings.
func (r *Rotator) settings() Settings { return r.reg.Load().settings }

func (r *Rotator) lookup(clientID string) (*appState, bool) {
	a, ok := r.reg.Load().byClient[clientID]
	return a, ok
}

func (r *Rotator) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// setStatus applies f to a copy of the status and publishes it; a compare-and-swap loop instead
// of a lock, so that no lock is ever taken while the application's work lock is held.
func (a *appState) setStatus(f func(*Status)) {
	for {
		old := a.status.Load()
		s := *old
		f(&s)
		if a.status.CompareAndSwap(old, &s) {
			return
		}
	}
}

// manual reports whether a SIGUSR1 is still owed a rotation, given the current record.
func (a *appState) manual(cur vault.Record) bool {
	at := a.manualAt.Load()
	return at != 0 && manualOwed(time.Unix(0, at), cur)
}
