package simulation

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/rotator"
)

// Replicas. A seed runs one, two or three processes of the daemon over the one world (Secrets
// Manager, SQS, Amazon) and the one clock, as replicas of a deployment do. Each is built anew at
// every crash, under a new claim holder name, while the others carry on.
//
// The driver runs one process at a time. What makes two of them race is interleaving: at any call
// a process makes to the world (Secrets Manager, LWA, SP-API), before the call takes effect,
// another replica may run its due scheduling pass or a poll of its queues to the end. So the work
// of one replica can fall between the read of another and its writes, anywhere, and reproducibly
// for a seed. Time moves only at the outermost level: a replica run inside another's call takes
// no time (it cannot move the clock under a process that is mid-call, which would fire that
// process's SQS heartbeat on its own goroutine and make the run depend on scheduling), except
// that the replicas that run while another waits for a late answer (slowAnswer) take time as the
// outermost one does: the waiting process is in a read, with no batch in flight.
//
// Amazon's one rotate call a minute would keep two replicas' calls apart on its own, hiding a
// broken claim: multi-replica seeds run the model of Amazon with a limit of a nanosecond, the
// rotator with a one-second RotateInterval, and give every outermost rotate call a round trip of
// rotateLatency, so two calls are never at the same instant. Single-replica seeds keep Amazon's
// minute and the daemon's defaults.
const (
	multiAmazonInterval        = time.Nanosecond
	multiRotateInterval        = time.Second
	rotateLatency              = 50 * time.Millisecond
	replicaStream       uint64 = 0x7e91ca5
)

// proc is one replica: a process of the daemon, built anew at each restart over the same world:
// a vault.Store over Secrets Manager, a Dispatcher in front of the rotator, and one Consumer per
// queue.
type proc struct {
	name      string // a, b or c
	gen       int    // the incarnation: restarts so far, plus one
	rot       *rotator.Rotator
	consumers []*notifications.Consumer
	dead      bool      // the process crashed; nothing more runs in it until restart
	holdLimit time.Time // while a message is handled: when its batch's heartbeat would fire
	dieAfter  *appSide  // set by a fault hook: crash when the call in progress returns
	polling   bool      // a Poll of its consumers is under way: a batch may be in flight
	nextTick  time.Time
	pollAt    time.Time
	last      *appSide // the application this process's latest fake call was for: whose jitter stream to use
}

// holder names the process in the claims it makes, as rotator.Options.Holder: one name per
// incarnation, so a restarted process does not take its predecessor's claim for its own.
func (p *proc) holder() string { return fmt.Sprintf("sim-%s/%d", p.name, p.gen) }

// drawReplicas decides, from a stream of its own (so a seed's other draws do not move), how many
// replicas run, how often one runs inside another's call, and how often a read is answered late:
// a fifth of the seeds keep one replica.
func drawReplicas(seed uint64) (n int, pNest, pSlow float64, r *rand.Rand) {
	r = rand.New(rand.NewPCG(mix(seed), replicaStream))
	n = 1
	switch k := r.IntN(10); {
	case k >= 6:
		n = 3
	case k >= 2:
		n = 2
	}
	return n, 0.05 + 0.35*r.Float64(), 0.05 * r.Float64(), r
}

func (s *sim) multi() bool { return len(s.procs) > 1 }

// cur is the process making the call in progress: the innermost one running. The harness's own
// calls (the fakes' tests) count as the first process's.
func (s *sim) cur() *proc {
	if len(s.stack) == 0 {
		return s.procs[0]
	}
	return s.stack[len(s.stack)-1]
}

// within runs f as process p and reports whether p crashed in it.
func (s *sim) within(p *proc, f func()) (crashed bool) {
	s.stack = append(s.stack, p)
	defer func() { s.stack = s.stack[:len(s.stack)-1] }()
	return s.protect(f)
}

// label names p in the trace; a single-replica seed's trace reads as it always did.
func (s *sim) label(p *proc) string {
	if !s.multi() {
		return "process"
	}
	return "process " + p.holder()
}

// order is the order the processes run in at this step: drawn anew, so that no replica is always
// the first to see a rotation due or a message arrive.
func (s *sim) order() []*proc {
	if !s.multi() {
		return s.procs
	}
	out := slices.Clone(s.procs)
	s.prng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// interleave may run another replica's due work inside the call the current process is making
// (op, about side's secret), before the call takes effect.
func (s *sim) interleave(side *appSide, op string) {
	if !s.multi() || len(s.stack) == 0 || len(s.stack) >= len(s.procs) || s.prng.Float64() >= s.sc.pNest {
		return
	}
	now := s.clk.Now()
	var ready []*proc
	for _, q := range s.procs {
		if !q.dead && !slices.Contains(s.stack, q) && (!now.Before(q.nextTick) || s.pollable(q, now)) {
			ready = append(ready, q)
		}
	}
	if len(ready) == 0 {
		return
	}
	q, p := ready[s.prng.IntN(len(ready))], s.cur()
	s.fig.nested++
	if !now.Before(q.nextTick) {
		s.tracef("%s: %s runs its scheduling pass inside %s's %s call", side.app.Name, s.label(q), s.label(p), op)
		s.tick(q)
		return
	}
	s.tracef("%s: %s polls its queues inside %s's %s call", side.app.Name, s.label(q), s.label(p), op)
	s.poll(q, now)
}

// timeMoves: the clock may move under the process making the call in progress (a hold, a rotate
// call's round trip): it is the outermost one, or runs while the outermost one waits for a late
// answer.
func (s *sim) timeMoves() bool {
	return len(s.stack) <= 1 || (len(s.stack) == 2 && s.stack[0] == s.waiting)
}

// pollable: a queue p would poll may hold a receivable message now.
func (s *sim) pollable(p *proc, now time.Time) bool {
	if now.Before(p.pollAt) {
		return false
	}
	for _, q := range s.queues() {
		if due := s.qDue[q]; !due.IsZero() && !now.Before(due) {
			return true
		}
	}
	return false
}

// slowAnswer: in a multi-replica seed, a read of an application's secret (DescribeSecret,
// GetSecretValue) may be answered up to 90 s late, as under throttling and the SDK's retries: the
// process goes on with a snapshot that aged while the other replicas did the work that fell due
// meanwhile, each at its moment. Only an outermost process's reads outside a poll are slowed:
// the clock must not move under a batch in flight (its heartbeat runs on its own goroutine).
func (s *sim) slowAnswer(secretID, op string) {
	side := s.bySecret[secretID]
	if side == nil || !s.multi() || len(s.stack) != 1 || s.cur().polling || s.prng.Float64() >= s.sc.pSlow {
		return
	}
	p := s.cur()
	d := time.Second + time.Duration(s.prng.Int64N(int64(90*time.Second)))
	until := s.clk.Now().Add(d)
	s.waiting = p
	defer func() { s.waiting = nil }()
	s.fig.slowReads++
	s.tracef("%s: %s's %s is answered %v late", side.app.Name, s.label(p), op, d.Round(time.Millisecond))
	for range 100 {
		now := s.clk.Now()
		for _, q := range s.order() {
			switch {
			case q == p || q.dead:
			case !now.Before(q.nextTick):
				s.tracef("%s: %s runs its scheduling pass while %s waits", side.app.Name, s.label(q), s.label(p))
				s.tick(q)
			case s.pollable(q, now):
				s.tracef("%s: %s polls its queues while %s waits", side.app.Name, s.label(q), s.label(p))
				s.poll(q, now)
			}
		}
		next := until
		for _, q := range s.procs {
			for _, t := range []time.Time{q.nextTick, q.pollAt} {
				if q != p && t.After(now) && t.Before(next) {
					next = t
				}
			}
		}
		for _, q := range s.queues() {
			if t := s.qDue[q]; t.After(now) && t.Before(next) {
				next = t
			}
		}
		if !now.Before(until) {
			return
		}
		s.clk.Set(next)
	}
	s.clk.Set(until)
}
