package notifications

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/backoff"
	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// Handled is what a Receiver did with one notification. Say, when set, writes the receiver's
// last log line for it; the Dispatcher calls it after counting the outcome, so whoever reads that
// line finds the metric already moved (state before words).
type Handled struct {
	App     string // the application's name, "" when the notification matched none
	Outcome Outcome
	Say     func()
	// Then is work for after the queue's answer (Result.Then).
	Then func(ctx context.Context)
}

// Receiver does the work a typed notification asks for.
type Receiver interface {
	Receive(ctx context.Context, n Notification, m Message) Handled
}

// OutcomeObserver counts outcomes; app is "" and typ "unknown" when they are not known.
type OutcomeObserver interface {
	Notification(app, typ string, outcome Outcome)
}

// FormatObserver, when the OutcomeObserver also implements it, is told of every parsed
// notification that came in an SNS envelope or with versions other than the documented ones.
type FormatObserver interface {
	NotificationFormat(typ string, unknownVersion, viaSNS bool)
}

// Dispatcher is the Handler between the Consumer and the domain: it checks the sender, parses,
// hands typed notifications to the Receiver, counts the outcome and turns its Verdict into what
// the queue is told (delete, a growing retry delay, or RejectedRetry).
type Dispatcher struct {
	Receiver Receiver
	Observer OutcomeObserver
	Log      *zap.Logger
	// AllowedSenderIDs, when non-empty, refuses messages from any other SQS sender.
	AllowedSenderIDs []string
	// RejectedRetry is how long a refused message stays hidden between deliveries (required).
	RejectedRetry time.Duration
	// RetryMin and RetryMax bound the delay of a failed message: it doubles while the same
	// client's messages keep failing, and resets once one is done (required).
	RetryMin, RetryMax time.Duration
	Rand               func() float64 // jitter in [0,1); nil: math/rand/v2
	// Clock times how long a held message waits between tries; nil: the real clock.
	Clock clock.Clock
	// Wait, when set, replaces how a held message waits d before the next try (default: sleep on
	// Clock until d passes or the message's Stop closes); it reports whether to try again. The
	// deterministic simulation moves its clock here.
	Wait func(ctx context.Context, m Message, d time.Duration) bool

	once    sync.Once
	senders map[string]bool
	mu      sync.Mutex     // guards failures; never held across a call
	fails   map[string]int // consecutive failed messages per client id
}

func (d *Dispatcher) init() {
	d.once.Do(func() {
		d.senders = map[string]bool{}
		for _, id := range d.AllowedSenderIDs {
			d.senders[id] = true
		}
		d.fails = map[string]int{}
		if d.Log == nil {
			d.Log = zap.NewNop()
		}
		if d.Rand == nil {
			d.Rand = rand.Float64
		}
		if d.Clock == nil {
			d.Clock = clock.Real{}
		}
		if d.Wait == nil {
			d.Wait = d.sleep
		}
	})
}

// Handle implements Handler.
func (d *Dispatcher) Handle(ctx context.Context, m Message) Result {
	d.init()
	log := d.Log.With(zap.String("message_id", m.ID), zap.Int("receive_count", m.ReceiveCount))
	log.Debug("message received", zap.String("sender_id", m.SenderID))
	if len(d.senders) > 0 && !d.senders[m.SenderID] {
		return d.answer("", Handled{Outcome: OutcomeRejected, Say: func() {
			log.Error("message from a sender that is not allowed; leaving it for the dead-letter queue", zap.String("sender_id", m.SenderID))
		}}, "unknown")
	}
	n, err := Parse(m.Body)
	if err != nil {
		return d.answer("", Handled{Outcome: OutcomeMalformed, Say: func() {
			log.Error("unparseable notification; leaving it for the dead-letter queue", zap.Error(err))
		}}, "unknown")
	}
	if meta := n.Meta(); meta.UnknownVersion() || meta.ViaSNS {
		if o, ok := d.Observer.(FormatObserver); ok {
			o.NotificationFormat(meta.Type, meta.UnknownVersion(), meta.ViaSNS)
		}
		if meta.UnknownVersion() {
			// The versions are not logged: they are the sender's text, and only their shape matters.
			log.Warn("notification with versions other than the documented ones; accepted, since it carries every field this daemon needs",
				zap.String("notification_type", meta.Type), zap.String("notification_id", meta.Metadata.NotificationID))
		}
	}
	h := d.Receiver.Receive(ctx, n, m)
	// Nothing durable happened yet (the vault or LWA failed before the secret was staged): keep
	// the message in hand and try again, rather than let the failure burn SQS receives and send
	// a genuine secret to the dead-letter queue. The consumer heartbeats the message meanwhile;
	// the wait ends with the consumer's shutdown, or before SQS's 12 hours run out. This is the
	// one place a message is retried; the queue's delay after a failure is the fallback.
	for tries := 1; h.Outcome == OutcomeFailed; tries++ {
		wait := backoff.Equal(tries, holdRetryMin, holdRetryMax, d.Rand)
		if m.HoldUntil.IsZero() || d.Clock.Now().Add(wait).After(m.HoldUntil) {
			break
		}
		if h.Say != nil {
			h.Say()
		}
		if !d.Wait(ctx, m, wait) {
			break
		}
		h = d.Receiver.Receive(ctx, n, m)
	}
	return d.answer(ClientID(n), h, n.Meta().Type)
}

// Holding a message through an outage retries from 5 s, doubling to 5 min: seconds after a blip,
// a dozen tries an hour through a long outage.
const (
	holdRetryMin = 5 * time.Second
	holdRetryMax = 5 * time.Minute
)

// sleep waits d on the clock, or until the message's consumer stops; it reports whether d passed.
func (d *Dispatcher) sleep(ctx context.Context, m Message, wait time.Duration) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if m.Stop != nil {
		go func() {
			select {
			case <-m.Stop:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return clock.Sleep(ctx, d.Clock, wait)
}

// answer counts h, lets the receiver say its last word, and maps the verdict to the queue.
func (d *Dispatcher) answer(clientID string, h Handled, typ string) Result {
	if d.Observer != nil {
		d.Observer.Notification(h.App, typ, h.Outcome)
	}
	if h.Say != nil {
		h.Say()
	}
	switch h.Outcome.Verdict() {
	case Done:
		d.mu.Lock()
		delete(d.fails, clientID)
		d.mu.Unlock()
		return Result{Delete: true, Then: h.Then}
	case Retry:
		d.mu.Lock()
		d.fails[clientID]++
		n := d.fails[clientID]
		d.mu.Unlock()
		return Result{RetryAfter: backoff.Equal(n, d.RetryMin, d.RetryMax, d.Rand), Then: h.Then}
	default:
		return Result{RetryAfter: d.RejectedRetry, Then: h.Then}
	}
}

// ClientID is the client id a notification is about.
func ClientID(n Notification) string {
	switch v := n.(type) {
	case *ExpiryNotice:
		return v.ClientID
	case *NewSecret:
		return v.ClientID
	}
	return ""
}
