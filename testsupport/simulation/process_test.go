package simulation

import (
	"context"
	"fmt"
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
)

// tick runs one scheduling pass of process p. Rotator.Tick visits applications in configuration
// order, so a crash in the middle of a pass lands at the same place on every replay of the seed.
func (s *sim) tick(p *proc) {
	s.fig.ticks++
	var next time.Time
	if s.within(p, func() { next = p.rot.Tick(s.ctx) }) {
		s.restart(p, "crash mid-call")
		return
	}
	p.nextTick = next
}

// protect runs f and reports whether the simulated process crashed in it.
func (s *sim) protect(f func()) (crashed bool) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(crashSignal); !ok {
				panic(v)
			}
			crashed = true
		}
	}()
	f()
	return false
}

// poll steps each of process p's real Consumers: one receive and its batch per Poll, until a
// receive returns nothing, fails, or the process dies handling a message. A queue is polled only
// when something in it can be receivable (the fake clock does not move while the driver polls,
// so empty receives would change nothing but cost time).
func (s *sim) poll(p *proc, now time.Time) bool {
	if now.Before(p.pollAt) {
		return false
	}
	did, polled := false, false
	defer func() {
		if polled {
			s.collectDeadLetters()
		}
	}()
	for i, c := range p.consumers {
		q := s.queues()[i]
		if due := s.qDue[q]; due.IsZero() || now.Before(due) {
			continue
		}
		for {
			polled = true
			var n int
			var err error
			p.polling = true
			s.within(p, func() { n, err = c.Poll(s.ctx) })
			p.polling = false
			if p.dead {
				for _, q := range s.queues() {
					s.qDue[q] = now // the dead process's batch is in flight: look again
				}
				s.restart(p, "crash mid-call")
				return true
			}
			if err != nil {
				p.pollAt = now.Add(time.Second + time.Duration(s.rng.Int64N(int64(time.Minute))))
				s.tracef("sqs receive fails; polling again at %s", p.pollAt.Format(time.TimeOnly))
				return did
			}
			if n == 0 {
				break
			}
			did = true
		}
		s.qDue[q] = s.nextVisible(q, now)
	}
	if did {
		p.nextTick = now // Receive pokes the scheduler after it changed something.
	}
	return did
}

// guard is the Consumer's Handler: the real Dispatcher, with the process's death turned into
// "nothing more happens". The Consumer runs a handler on its own goroutine and survives its
// panics, so the crash signal is caught here: the message it was handling and the rest of the
// batch stay in flight, as they would when a process dies.
type guard struct {
	s *sim
	p *proc
	d *notifications.Dispatcher
}

func (g guard) Handle(ctx context.Context, m notifications.Message) (res notifications.Result) {
	s, p := g.s, g.p
	if p.dead {
		return notifications.Result{}
	}
	s.fig.handled++
	if m.ReceiveCount > 1 {
		s.fig.redeliveries++
	}
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(crashSignal); !ok {
				s.violate(nil, "harness", fmt.Sprintf("handling message %s panicked: %v", m.ID, v))
			}
			p.dead = true
			res = notifications.Result{}
		}
	}()
	// The hold: Rotator.Receive keeps a failing message in hand and waits through the rotator's
	// Wait hook (holdWait), which moves this simulation's clock itself. It stops holding before
	// the batch's heartbeat would fire (half the visibility timeout after the receive), since the
	// heartbeat runs on the consumer's own goroutine and would make the run depend on scheduling.
	p.holdLimit = m.ReceivedAt.Add(visibilityTimeout / 2)
	res = g.d.Handle(ctx, m)
	p.holdLimit = time.Time{}
	s.tracef("handled %s (%s, receive #%d): delete=%v retryAfter=%v", m.ID, kindName(s.sent[m.ID].kind), m.ReceiveCount, res.Delete, res.RetryAfter)
	if then := res.Then; then != nil {
		// The follow-up runs after the delete, where a crash leaves the message gone and the
		// bookkeeping not yet cleared.
		res.Then = func(ctx context.Context) {
			if p.dead {
				return
			}
			defer func() {
				if v := recover(); v != nil {
					if _, ok := v.(crashSignal); !ok {
						s.violate(nil, "harness", fmt.Sprintf("follow-up of message %s panicked: %v", m.ID, v))
					}
					p.dead = true
				}
			}()
			then(ctx)
		}
	}
	return res
}

// holdWait is process p's Wait hook: time passes while a message is held, up to the batch's
// heartbeat. Events due meanwhile run when the poll returns, as they would queue behind a busy
// process. A replica running inside another's call does not hold (timeMoves).
func (s *sim) holdWait(p *proc, d time.Duration) bool {
	if !s.timeMoves() || p.holdLimit.IsZero() || !s.clk.Now().Add(d).Before(p.holdLimit) {
		return false
	}
	s.fig.holds++
	s.clk.Advance(d)
	return true
}

// nextStep is the earliest time after now anything can happen.
func (s *sim) nextStep(now time.Time) time.Time {
	next := s.end
	consider := func(t time.Time) {
		if t.After(now) && t.Before(next) {
			next = t
		}
	}
	for _, p := range s.procs {
		consider(p.nextTick)
		consider(p.pollAt)
	}
	for _, q := range s.queues() {
		consider(s.qDue[q])
	}
	if len(s.events) > 0 {
		consider(s.events[0].at)
	}
	for _, side := range s.sides {
		consider(s.dueNotices(side, now))
		if _, rec, ok := s.current(side); ok {
			if seq := side.amz.find(rec.ClientSecret.Reveal()); seq >= 0 {
				consider(side.amz.secret(seq).ExpiresAt)
			}
		}
	}
	if !next.After(now) {
		next = now.Add(time.Millisecond)
	}
	return next
}
