package simulation

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
)

// SQS numbers: the consumer's default visibility timeout and the redrive policy's maxReceiveCount.
const (
	visibilityTimeout = 60 * time.Second
	maxReceiveCount   = 5
)

// qmsg is one message in a standard queue.
type qmsg struct {
	id        string
	body      []byte
	out       outgoing
	sentAt    time.Time
	visibleAt time.Time
	receives  int
	handle    string // the receipt handle of the latest receive; older ones delete nothing
}

// queue is an SQS standard queue: at-least-once, unordered, visibility timeouts on the fake
// clock, receive counts, and redrive to a dead-letter queue after maxReceiveCount receives.
type queue struct {
	name  string
	msgs  []*qmsg
	dlq   []*qmsg
	count int
}

func (q *queue) url() string {
	return "https://sqs.us-east-1.amazonaws.com/123456789012/" + q.name
}

func (q *queue) send(out outgoing, now time.Time) {
	q.count++
	q.msgs = append(q.msgs, &qmsg{id: fmt.Sprintf("%s-%d", q.name, q.count), body: out.body, out: out, sentAt: now, visibleAt: now})
}

// receive returns up to max visible messages in no particular order. A message received
// maxReceiveCount times already goes to the dead-letter queue instead; moved lists those.
func (q *queue) receive(now time.Time, max int, rng *rand.Rand) (got []notifications.Message, moved []*qmsg) {
	var visible []*qmsg
	for _, m := range q.msgs {
		if !now.Before(m.visibleAt) {
			visible = append(visible, m)
		}
	}
	rng.Shuffle(len(visible), func(i, j int) { visible[i], visible[j] = visible[j], visible[i] })
	for _, m := range visible {
		if len(got) == max {
			break
		}
		if m.receives >= maxReceiveCount {
			q.remove(m)
			q.dlq = append(q.dlq, m)
			moved = append(moved, m)
			continue
		}
		m.receives++
		m.visibleAt = now.Add(visibilityTimeout)
		q.count++
		m.handle = fmt.Sprintf("%s#%d", m.id, q.count)
		got = append(got, notifications.Message{ID: m.id, ReceiptHandle: m.handle, QueueURL: q.url(),
			SenderID: "AIDAJ437568002678", Body: slices.Clone(m.body), ReceiveCount: m.receives, SentAt: m.sentAt})
	}
	return got, moved
}

func (q *queue) byHandle(handle string) *qmsg {
	for _, m := range q.msgs {
		if m.handle == handle {
			return m
		}
	}
	return nil
}

func (q *queue) remove(m *qmsg) {
	q.msgs = slices.DeleteFunc(q.msgs, func(x *qmsg) bool { return x == m })
}

// delete removes the message if handle is its latest receipt handle, as SQS does.
func (q *queue) delete(handle string) bool {
	if m := q.byHandle(handle); m != nil {
		q.remove(m)
		return true
	}
	return false
}

// changeVisibility makes the message visible again d from now (capped at SQS's 12 hours).
func (q *queue) changeVisibility(handle string, d time.Duration, now time.Time) bool {
	if m := q.byHandle(handle); m != nil {
		m.visibleAt = now.Add(min(d, notifications.MaxVisibility))
		return true
	}
	return false
}

// nextVisible is the earliest time after now a message becomes visible, or zero.
func (q *queue) nextVisible(now time.Time) time.Time {
	var next time.Time
	for _, m := range q.msgs {
		if m.visibleAt.After(now) && (next.IsZero() || m.visibleAt.Before(next)) {
			next = m.visibleAt
		}
	}
	return next
}

func (q *queue) byID(id string) *qmsg {
	for _, m := range q.msgs {
		if m.id == id {
			return m
		}
	}
	return nil
}
