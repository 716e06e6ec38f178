package simulation

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/amazon"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesqs"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The production defaults, which the checks reason with: config's for the rotator and the
// dispatcher's refused-message delay, internal/daemon's for the failed-message delays.
const (
	renewBefore     = config.DefaultRenewBefore
	awaitDeadline   = config.DefaultAwaitDeadline
	retryMin        = time.Minute
	retryMax        = time.Hour
	rejectedRetry   = 15 * time.Minute
	messageRetryMin = 5 * time.Second
	messageRetryMax = 5 * time.Minute
)

// amazonSender is the SQS sender id of Amazon's notifications, the one the dispatcher allows.
const amazonSender = "AIDAJ437568002678"

type sqsOp int

const (
	sqsReceive sqsOp = iota
	sqsDelete
	sqsVisibility
	numSQSOps
)

var sqsOpNames = [numSQSOps]string{"receive", "delete", "visibility"}

// sim is one seed's run. The world (Secrets Manager, SQS, Amazon) outlives every process; each
// process (a replica: the real vault.Store, notifications.Consumers and Dispatcher, and rotator)
// is built anew at each restart over the same world.
type sim struct {
	seed       uint64
	sc         scenario
	rng        *rand.Rand
	clk        *fakeclock.Fake
	start, end time.Time
	ctx        context.Context
	sides      []*appSide
	byClient   map[string]*appSide
	bySecret   map[string]*appSide
	byName     map[string]*appSide
	events     []event
	evSeq      int

	// The world.
	sm         *fakesm.SM
	sqs        *fakesqs.Fake
	qNew, qExp string               // queue URLs; the same one when the scenario has one queue
	sent       map[string]outgoing  // by SQS message id: what each message is, for the checks
	handles    map[string]string    // receipt handle → message id, for the deletion check
	dlqSeen    map[string]int       // dead-lettered messages already counted, by source queue
	qDue       map[string]time.Time // when a queue may next have a receivable message; zero: never
	seeding    bool                 // the harness writes the initial secrets: no faults

	// The processes (replicas_test.go).
	procs      []*proc
	stack      []*proc    // the processes running, innermost last: one runs inside another's call
	prng       *rand.Rand // the replicas' draws, apart from rng: a single-replica seed never uses it
	waiting    *proc      // the process waiting for a late answer (slowAnswer), if any
	sqsFaults  [numSQSOps]int
	fig        *figures
	violations []violation
	tr         *tracer
	log        *zap.Logger
}

var simStart = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

func newSim(seed uint64, tr *tracer) *sim {
	s := &sim{seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), start: simStart, ctx: context.Background(),
		byClient: map[string]*appSide{}, bySecret: map[string]*appSide{}, byName: map[string]*appSide{},
		fig: newFigures(), tr: tr, log: tr.logger()}
	s.sc = drawScenario(s.rng)
	s.sc.replicas, s.sc.pNest, s.sc.pSlow, s.prng = drawReplicas(seed)
	for i := range s.sc.replicas {
		s.procs = append(s.procs, &proc{name: string(rune('a' + i))})
	}
	s.end = s.start.Add(time.Duration(s.sc.days) * day)
	s.clk = fakeclock.New(s.start)
	s.sm = fakesm.New(fakesm.Options{Clock: s.clk, Fault: s.smFault})
	s.sqs = fakesqs.New(s.clk)
	s.sqs.SetFault(s.sqsFault)
	s.sent, s.handles, s.dlqSeen, s.qDue = map[string]outgoing{}, map[string]string{}, map[string]int{}, map[string]time.Time{}
	s.qNew = s.createQueue("lwa-new-secret")
	s.qExp = s.qNew
	if s.sc.twoQueues {
		s.qExp = s.createQueue("lwa-secret-expiry")
	}
	regions := [...]spapi.Region{"na", "eu", "fe"}
	for i := range s.sc.apps {
		s.addApp(i, regions[i%len(regions)])
	}
	s.poisson(evReplay, s.sc.replay)
	s.poisson(evPlant, s.sc.plant)
	s.poisson(evRestart, s.sc.restart)
	s.poisson(evBurst, s.sc.burst)
	s.poisson(evSQSFault, s.sc.sqsOp)
	s.fig.runs, s.fig.days, s.fig.apps = 1, float64(s.sc.days), s.sc.apps
	s.fig.replicas[s.sc.replicas]++
	return s
}

// addApp registers an application with Amazon and seeds its vault secret; a fifth of them are
// seeded by hand without an expiry, so only Amazon's notices can say when they run out.
func (s *sim) addApp(i int, region spapi.Region) {
	app := rotator.App{Name: fmt.Sprintf("app-%d", i), ClientID: fmt.Sprintf("amzn1.application-oa2-client.sim%04d", i),
		Region: region, SecretID: fmt.Sprintf("lwa/app-%d", i), ApplicationID: fmt.Sprintf("amzn1.sp.solution.sim%04d", i),
		Canary: i == 0 && s.sc.canary}
	unknown := s.rng.IntN(5) == 0
	lo := 20 * day
	if unknown {
		lo = 100 * day
	}
	exp := s.start.Add(lo + time.Duration(s.rng.Int64N(int64(180*day-lo)))).Truncate(time.Millisecond)
	first := secret.New(fmt.Sprintf("amzn1.oa2-cs.v1.initial%04d%016x", i, mix(s.seed+uint64(i))))
	rec := vault.Record{ClientID: app.ClientID, ClientSecret: first}
	if !unknown {
		rec.ExpiresAt = exp
	}
	enc, err := vault.Encode(rec, vault.FormatDefault)
	if err != nil {
		panic(err)
	}
	side := &appSide{idx: i, app: app, records: map[string]vault.Record{},
		stats: appStats{rotation: map[string]int{}, outcome: map[string]int{}},
	}
	s.seeding = true
	out, err := s.sm.CreateSecret(s.ctx, &secretsmanager.CreateSecretInput{Name: aws.String(app.SecretID),
		ClientRequestToken: aws.String(fmt.Sprintf("initial-%d-%024x", i, mix(s.seed+uint64(i)))), SecretString: aws.String(string(enc))})
	s.seeding = false
	if err != nil {
		panic(err)
	}
	side.currentID = aws.ToString(out.VersionId)
	sub := fmt.Sprintf("sub-%d", i)
	rules := amazon.Rules{}
	if s.sc.replicas > 1 {
		rules.RotateInterval = multiAmazonInterval
	}
	side.amz = amazonSide{model: amazon.New(rules, sideIDs{s.seed, side}), clientID: app.ClientID, notes: []notices{{}}}
	if err := side.amz.model.Register(s.start, amazon.Application{ClientID: app.ClientID, ApplicationID: app.ApplicationID,
		Secret: first, SecretExpiresAt: exp, ExpiryQueueURL: s.qExp, NewSecretQueueURL: s.qNew,
		ExpirySubscriptionID: sub, NewSecretSubscriptionID: sub}); err != nil {
		panic(err)
	}
	side.amz.notes[0].skipPassed(exp, s.start)
	s.sides = append(s.sides, side)
	s.byClient[app.ClientID], s.bySecret[app.SecretID], s.byName[app.Name] = side, side, side
	s.scheduleWindow(side, exp)
}

func (s *sim) scheduleWindow(side *appSide, expiry time.Time) {
	at := expiry.Add(-renewBefore - time.Duration(s.rng.Int64N(int64(time.Hour))))
	s.schedule(event{at: later(at, s.start), kind: evWindow, side: side.idx})
}

func (s *sim) apps() []rotator.App {
	out := make([]rotator.App, len(s.sides))
	for i, side := range s.sides {
		out[i] = side.app
	}
	return out
}

// restart throws process p away and builds a new one over the same world, as a new process
// would: a vault.Store over Secrets Manager, a Dispatcher in front of the rotator, and one
// Consumer per queue.
func (s *sim) restart(p *proc, why string) {
	p.dead, p.dieAfter = false, nil
	p.gen++
	log := s.log
	if s.multi() {
		log = log.With(zap.String("holder", p.holder())) // whose line it is, in a trace
	}
	store := &vault.Store{SM: smAPI{s}, Log: log, Clock: s.clk}
	set := rotator.Settings{RenewBefore: renewBefore, AwaitDeadline: awaitDeadline, RetryMin: retryMin, RetryMax: retryMax,
		ProbeEvery: config.DefaultProbeInterval, CanaryEvery: config.DefaultCanaryEvery}
	if s.multi() {
		set.RotateInterval = multiRotateInterval
	}
	rnd := func() float64 { return s.rand(p) }
	rot, err := rotator.New(rotator.Options{Apps: s.apps(), Vault: store, LWA: fakeLWA{s}, SPAPI: fakeSPAPI{s},
		Settings: set, Clock: s.clk, Log: log, Observer: observer{s}, Rand: rnd,
		Checkpoint: func(step rotator.Step) { s.checkpoint(p, step) },
		// A restarted process is another claim holder: its predecessor's claims are not its own.
		Holder: p.holder()})
	if err != nil {
		panic(err)
	}
	p.rot = rot
	d := &notifications.Dispatcher{Receiver: rot, Observer: observer{s}, Log: log, AllowedSenderIDs: []string{amazonSender},
		RejectedRetry: rejectedRetry, RetryMin: messageRetryMin, RetryMax: messageRetryMax, Rand: rnd,
		Clock: s.clk, Wait: func(_ context.Context, _ notifications.Message, d time.Duration) bool { return s.holdWait(p, d) }}
	p.consumers = nil
	for _, url := range s.queues() {
		p.consumers = append(p.consumers, &notifications.Consumer{SQS: sqsAPI{s}, QueueURL: url, Handler: guard{s, p, d},
			Log: log, Clock: s.clk, VisibilityTimeout: visibilityTimeout})
	}
	p.nextTick = s.clk.Now()
	if why != "" {
		s.fig.restarts[why]++
		s.tracef("%s restarts (%s)", s.label(p), why)
	}
}

// rand gives process p's rotator jitter from the stream of the application it is working on.
func (s *sim) rand(p *proc) float64 {
	side := p.last
	if side == nil {
		side = s.sides[0]
	}
	side.rnd++
	return unitFloat(mix(s.seed ^ uint64(side.idx+1)<<56 ^ side.rnd))
}

// maxSteps bounds a run, per replica: a healthy one takes a few tens of thousands of steps, and
// a rotator that asks to be woken every millisecond must fail the run, not hang it.
const maxSteps = 200_000

func (s *sim) run() {
	defer s.finish()
	for _, p := range s.procs {
		s.restart(p, "")
	}
	for steps := 0; ; steps++ {
		now := s.clk.Now()
		s.checkCurrent(now)
		if !now.Before(s.end) {
			return
		}
		if s.broken() {
			return // the first violation is the story; what follows is its fallout
		}
		if steps == maxSteps*len(s.procs) {
			s.violate(nil, "busy loop", fmt.Sprintf("%d steps and only %v of simulated time", steps, now.Sub(s.start)))
			return
		}
		for i := 0; s.step(now); i++ {
			if i == 1000 {
				s.violate(nil, "busy loop", "1000 rounds of work without the clock moving")
				return
			}
		}
		s.clk.Set(s.nextStep(now))
		s.fig.steps++
	}
}

// step does one round of everything due at now and reports whether anything happened.
func (s *sim) step(now time.Time) bool {
	did := false
	for len(s.events) > 0 && !s.events[0].at.After(now) {
		e := s.events[0]
		s.events = s.events[1:]
		s.fire(e, now)
		did = true
	}
	for _, side := range s.sides {
		s.dueNotices(side, now)
	}
	did = s.drain(now) || did
	for _, p := range s.order() {
		if !now.Before(p.nextTick) {
			s.tick(p)
			did = true
		}
	}
	for _, p := range s.order() {
		did = s.poll(p, now) || did
	}
	return s.drain(now) || did
}

func (s *sim) fire(e event, now time.Time) {
	side := s.sides[e.side]
	switch e.kind {
	case evDeliver:
		q := s.qNew
		if e.out.kind == noteExpiry {
			q = s.qExp
		}
		s.send(q, e.out)
		if e.out.kind == noteNewSecret {
			if e.out.seq < side.delivered {
				s.fig.reordered++
			}
			side.delivered = max(side.delivered, e.out.seq)
		}
	case evReplay:
		s.replay(side, now)
	case evPlant:
		s.plant(side, now)
	case evRestart:
		if s.rng.IntN(2) == 0 {
			p := s.procs[0]
			if s.multi() {
				p = s.procs[s.prng.IntN(len(s.procs))]
			}
			s.restart(p, "between steps")
		} else {
			s.crashSoon(side, 1+s.rng.IntN(8))
		}
	case evBurst:
		svc := service(s.rng.IntN(int(numServices)))
		st, amb := 0, s.rng.IntN(4) == 0
		if svc != svcVault {
			st = s.status()
			amb = amb && svc == svcSPAPI && st != 429
		}
		s.arm(side, svc, 1+s.rng.IntN(8), st, amb)
	case evSQSFault:
		op := sqsOp(s.rng.IntN(int(numSQSOps)))
		n := 1 + s.rng.IntN(5)
		s.sqsFaults[op] += n
		s.fig.faults["sqs "+sqsOpNames[op]+" error"] += n
	case evWindow:
		s.window(side)
	}
}

// drain hands what Amazon produced during the step to its delivery.
func (s *sim) drain(now time.Time) bool {
	did := false
	for _, side := range s.sides {
		out := side.outbox
		side.outbox = nil
		for _, o := range out {
			did = true
			s.deliver(side, o, now)
			if o.kind == noteNewSecret {
				s.scheduleWindow(side, side.amz.secret(o.seq).ExpiresAt)
			}
		}
	}
	return did
}

func (s *sim) broken() bool {
	if len(s.violations) > 0 {
		return true
	}
	for _, side := range s.sides {
		if len(side.viol) > 0 {
			return true
		}
	}
	return false
}

func (s *sim) queues() []string {
	if s.qExp == s.qNew {
		return []string{s.qNew}
	}
	return []string{s.qNew, s.qExp}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
