package simulation

import (
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// tick runs one scheduling pass. If the process crashes in it, the applications other than the
// one that crashed are rolled back, as if the crashed one had been visited first.
func (s *sim) tick() {
	var snap []*appSide
	for _, side := range s.sides {
		if side.crash.armed() {
			snap = make([]*appSide, len(s.sides))
			for i, o := range s.sides {
				snap[i] = o.clone()
			}
			break
		}
	}
	s.fig.ticks++
	mark := s.tr.mark()
	var next time.Time
	if s.protect(func() { next = s.rot.Tick(s.ctx) }) {
		for i, side := range s.sides {
			if side != s.crashed {
				*side = *snap[i]
				s.tr.forget(mark, side.app.Name)
			}
		}
		s.restart("crash mid-call")
		return
	}
	s.nextTick = next
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

// poll is the SQS consumer: receive everything visible, hand it to Rotator.Handle one by one and
// do what the Result says.
func (s *sim) poll(now time.Time) bool {
	if now.Before(s.pollAt) {
		return false
	}
	did := false
	queues := []*queue{s.qNew}
	if s.qExp != s.qNew {
		queues = append(queues, s.qExp)
	}
	for _, q := range queues {
		for {
			if s.sqsFaults[sqsReceive] > 0 {
				s.sqsFaults[sqsReceive]--
				s.pollAt = now.Add(time.Second + time.Duration(s.rng.Int64N(int64(time.Minute))))
				s.tracef("sqs receive fails; polling again at %s", s.pollAt.Format(time.TimeOnly))
				return did
			}
			msgs, moved := q.receive(now, 10, s.rng)
			for _, m := range moved {
				s.deadLettered(m)
			}
			if len(msgs) == 0 {
				break
			}
			did = true
			for _, m := range msgs {
				var res notifications.Result
				s.fig.handled++
				if m.ReceiveCount > 1 {
					s.fig.redeliveries++
				}
				if s.protect(func() { res = s.rot.Handle(s.ctx, m) }) {
					s.restart("crash mid-call")
					return true
				}
				s.tracef("handled %s (%s, receive #%d): delete=%v retryAfter=%v", m.ID, kindName(q.byID(m.ID).out.kind), m.ReceiveCount, res.Delete, res.RetryAfter)
				s.checkAck(q.byID(m.ID), res, now)
				s.apply(q, m, res, now)
			}
		}
	}
	if did {
		s.nextTick = now // Handle pokes the scheduler after it changed something.
	}
	return did
}

func (s *sim) apply(q *queue, m notifications.Message, res notifications.Result, now time.Time) {
	switch {
	case res.Delete && s.sqsFaults[sqsDelete] > 0:
		s.sqsFaults[sqsDelete]--
		s.tracef("sqs delete of %s fails; it comes back", m.ID)
	case res.Delete:
		q.delete(m.ReceiptHandle)
	case res.RetryAfter > 0 && s.sqsFaults[sqsVisibility] > 0:
		s.sqsFaults[sqsVisibility]--
		s.tracef("sqs visibility change of %s fails", m.ID)
	case res.RetryAfter > 0:
		q.changeVisibility(m.ReceiptHandle, res.RetryAfter, now)
	}
}

// nextStep is the earliest time after now anything can happen.
func (s *sim) nextStep(now time.Time) time.Time {
	next := s.end
	consider := func(t time.Time) {
		if t.After(now) && t.Before(next) {
			next = t
		}
	}
	consider(s.nextTick)
	consider(s.pollAt)
	consider(s.qNew.nextVisible(now))
	consider(s.qExp.nextVisible(now))
	if len(s.events) > 0 {
		consider(s.events[0].at)
	}
	for _, side := range s.sides {
		consider(s.dueNotices(side, now))
		if v := side.vault.holder(vault.StageCurrent); v != nil {
			if seq := side.amz.find(v.rec.ClientSecret.Reveal()); seq >= 0 {
				consider(side.amz.secret(seq).ExpiresAt)
			}
		}
	}
	if !next.After(now) {
		next = now.Add(time.Millisecond)
	}
	return next
}
