package notifications

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"path"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// SQS is the part of *sqs.Client the consumer uses.
type SQS interface {
	ReceiveMessage(ctx context.Context, params *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, params *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, params *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Message is one received SQS message. ReceiveCount above 1 means an earlier attempt did not
// delete it; SenderID lets a handler check that Amazon, not someone else, wrote it.
type Message struct {
	ID            string
	ReceiptHandle string
	QueueURL      string
	SenderID      string
	Body          []byte
	ReceiveCount  int
	SentAt        time.Time
	// ReceivedAt is when this receive happened (the injected clock): SQS counts its 12-hour
	// visibility limit from there.
	ReceivedAt time.Time
	// HoldUntil is how long a handler may keep the message in hand (the consumer heartbeats its
	// visibility meanwhile): SQS's 12 hours from the receipt, less room for two visibility
	// timeouts of work and the clock margin. Zero: do not hold it.
	HoldUntil time.Time
	// Stop is closed when the consumer that handed over the message shuts down. A handler's
	// context is never cancelled by shutdown (the work in hand must finish), so a handler that
	// waits, holding a message through an outage, stops waiting on this instead. Nil: never.
	Stop <-chan struct{}
}

// Result tells the consumer what to do with a message once the handler returns. Delete only when
// the work is durable (or the message was proven stale/duplicate). Otherwise the message stays;
// RetryAfter > 0 sets its visibility to that (capped at 12h).
type Result struct {
	Delete     bool
	RetryAfter time.Duration
	// Then, when set, is work that need not delay the queue's answer (bookkeeping after a
	// promotion): the consumer runs it once the delete or delay call returned, whatever it
	// returned, before the next message of the same client.
	Then func(ctx context.Context)
}

// Handler does the work for one message.
type Handler interface {
	Handle(ctx context.Context, m Message) Result
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m Message) Result

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, m Message) Result { return f(ctx, m) }

// Observer is told the outcome of every poll (err nil on success), for metrics and readiness.
type Observer interface {
	Polled(queueURL string, received int, err error)
}

// Action names a call the consumer makes on a message it holds.
type Action string

// The actions an ActionObserver hears about.
const (
	ActionDelete  Action = "delete"  // the handler's work is durable
	ActionExtend  Action = "extend"  // heartbeat while the batch is in hand
	ActionRetry   Action = "retry"   // Result.RetryAfter
	ActionRelease Action = "release" // handing unhandled messages back on shutdown
)

// ActionObserver, when the Observer also implements it, is told of every failed delete or
// visibility change. A failed delete means the message comes back and is handled again.
type ActionObserver interface {
	ActionFailed(queueURL string, action Action, err error)
}

// MaxVisibility is the longest visibility timeout SQS accepts.
const MaxVisibility = 12 * time.Hour

// ErrConfig marks a Consumer that cannot run as configured.
var ErrConfig = errors.New("invalid consumer configuration")

// Consumer polls one queue and hands its messages, one at a time and in order, to Handler.
type Consumer struct {
	SQS               SQS
	QueueURL          string
	Handler           Handler
	Log               *zap.Logger
	Clock             clock.Clock
	Observer          Observer
	WaitTime          time.Duration // long poll, default 20s
	MaxMessages       int32         // default 10
	VisibilityTimeout time.Duration // default 60s; extended every VisibilityTimeout/2 while a batch is in hand
	// Receive-error backoff with full jitter, default 1s..1m.
	MinBackoff, MaxBackoff time.Duration
	Rand                   func() float64 // jitter source in [0,1), default math/rand/v2
	// Concurrency is how many applications' messages of one batch are handled at once (0 or 1:
	// one message at a time). Messages about one client id are always handled one at a time and
	// in the order received, so ordering and the per-application rotate limit hold.
	Concurrency int
	// Drained, when set, is called by Run when a receive finds the queue empty after receives
	// that found messages: a backlog is over (the daemon hands the memory it took back then).
	Drained func()
}

// run is a Consumer with defaults applied, so Run never writes to the caller's struct.
type run struct {
	Consumer
	queue string // the queue's name, for logs
}

func (c *Consumer) settings() (*run, error) {
	r := &run{Consumer: *c}
	switch {
	case r.SQS == nil:
		return nil, fmt.Errorf("%w: SQS client is nil", ErrConfig)
	case r.QueueURL == "":
		return nil, fmt.Errorf("%w: QueueURL is empty", ErrConfig)
	case r.Handler == nil:
		return nil, fmt.Errorf("%w: Handler is nil", ErrConfig)
	}
	if r.Log == nil {
		r.Log = zap.NewNop()
	}
	if r.Clock == nil {
		r.Clock = clock.Real{}
	}
	if r.Observer == nil {
		r.Observer = nopObserver{}
	}
	if r.Rand == nil {
		r.Rand = rand.Float64
	}
	if r.WaitTime == 0 {
		r.WaitTime = 20 * time.Second
	}
	if r.MaxMessages == 0 {
		r.MaxMessages = 10
	}
	if r.VisibilityTimeout == 0 {
		r.VisibilityTimeout = 60 * time.Second
	}
	if r.MinBackoff == 0 {
		r.MinBackoff = time.Second
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = time.Minute
	}
	switch {
	case r.WaitTime < 0 || r.WaitTime > 20*time.Second:
		return nil, fmt.Errorf("%w: WaitTime %v outside 0..20s", ErrConfig, r.WaitTime)
	case r.MaxMessages < 1 || r.MaxMessages > 10:
		return nil, fmt.Errorf("%w: MaxMessages %d outside 1..10", ErrConfig, r.MaxMessages)
	case r.VisibilityTimeout < time.Second || r.VisibilityTimeout > MaxVisibility:
		// Below a second the heartbeat would fire at sub-second visibility, which SQS rounds away.
		return nil, fmt.Errorf("%w: VisibilityTimeout %v outside 1s..12h", ErrConfig, r.VisibilityTimeout)
	case r.MinBackoff < 0 || r.MaxBackoff < r.MinBackoff:
		return nil, fmt.Errorf("%w: backoff %v..%v", ErrConfig, r.MinBackoff, r.MaxBackoff)
	}
	r.queue = queueName(r.QueueURL)
	r.Log = r.Log.With(zap.String("queue", r.queue))
	return r, nil
}

// Run polls until ctx is done. On ctx done it stops receiving, lets the message in hand finish
// (the handler gets a context that is NOT cancelled by ctx), returns the batch's untouched
// messages to the queue (visibility 0), and returns nil. It returns an error only for an invalid
// configuration.
func (c *Consumer) Run(ctx context.Context) error {
	r, err := c.settings()
	if err != nil {
		return err
	}
	failures := 0
	busy := false
	for ctx.Err() == nil {
		n, err := r.poll(ctx)
		if err == nil {
			failures = 0
			if n > 0 {
				busy = true
			} else if busy {
				busy = false
				if r.Drained != nil {
					r.Drained()
				}
			}
			continue
		}
		if ctx.Err() != nil {
			// Shutdown cut the long poll short; that is not a receive failure.
			break
		}
		failures++
		r.Log.Warn("receiving messages failed", zap.Error(err), zap.Int("consecutive_failures", failures))
		if !r.sleep(ctx, r.backoff(failures)) {
			break
		}
	}
	return nil
}

// Poll does exactly one receive and handles the batch it returns, with Run's heartbeat and
// shutdown release, so that a deterministic driver can step the consumer on a fake clock.
// received is how many messages the receive returned. err is ErrConfig for an invalid
// configuration, ctx's error when ctx ended the receive, or the receive's failure (also told to
// the Observer); it never reports the handling of a message, which the Observer hears about.
func (c *Consumer) Poll(ctx context.Context) (received int, err error) {
	r, err := c.settings()
	if err != nil {
		return 0, err
	}
	n, err := r.poll(ctx)
	if err != nil && ctx.Err() == nil {
		return 0, fmt.Errorf("receiving from queue %s: %w", r.queue, err)
	}
	return n, err
}

// poll is one receive and its batch. A receive cut short by ctx returns ctx's error unreported;
// any other failure is reported to the Observer and returned as SQS gave it.
func (r *run) poll(ctx context.Context) (int, error) {
	out, err := r.SQS.ReceiveMessage(ctx, r.receiveInput())
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		r.Observer.Polled(r.QueueURL, 0, fmt.Errorf("receiving from queue %s: %w", r.queue, err))
		return 0, err
	}
	r.Observer.Polled(r.QueueURL, len(out.Messages), nil)
	r.handleBatch(ctx, r.messages(out.Messages))
	return len(out.Messages), nil
}

func (r *run) receiveInput() *sqs.ReceiveMessageInput {
	return &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(r.QueueURL),
		MaxNumberOfMessages: r.MaxMessages,
		WaitTimeSeconds:     int32(r.WaitTime / time.Second),
		VisibilityTimeout:   seconds(r.VisibilityTimeout),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameSenderId,
			types.MessageSystemAttributeNameSentTimestamp,
		},
	}
}

// backoff is full jitter over an exponentially growing cap: retries from many replicas spread
// out instead of hitting a recovering endpoint together.
func (r *run) backoff(failures int) time.Duration {
	ceiling := float64(r.MaxBackoff)
	if exp := float64(r.MinBackoff) * math.Pow(2, float64(failures-1)); exp < ceiling {
		ceiling = exp
	}
	return time.Duration(r.Rand() * ceiling)
}

// sleep waits d on the injected clock; it reports false when ctx ended first.
func (r *run) sleep(ctx context.Context, d time.Duration) bool { return clock.Sleep(ctx, r.Clock, d) }

func (r *run) messages(in []types.Message) []Message {
	out := make([]Message, 0, len(in))
	for _, m := range in {
		msg := Message{
			ID:            aws.ToString(m.MessageId),
			ReceiptHandle: aws.ToString(m.ReceiptHandle),
			QueueURL:      r.QueueURL,
			SenderID:      m.Attributes[string(types.MessageSystemAttributeNameSenderId)],
			Body:          []byte(aws.ToString(m.Body)),
			ReceivedAt:    r.Clock.Now(),
			HoldUntil:     r.holdUntil(r.Clock.Now()),
		}
		if n, err := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil {
			msg.ReceiveCount = n
		}
		if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
			msg.SentAt = time.UnixMilli(ms).UTC()
		}
		if msg.ReceiptHandle == "" {
			// Without a handle the message can be neither deleted nor extended; SQS will
			// redeliver it.
			r.Log.Error("message without receipt handle skipped", zap.String("message_id", msg.ID))
			continue
		}
		out = append(out, msg)
	}
	return out
}

func (r *run) holdUntil(received time.Time) time.Time {
	if room := MaxVisibility - 2*r.VisibilityTimeout - visibilityMargin; room > 0 {
		return received.Add(room)
	}
	return time.Time{}
}

// seconds rounds up, so a visibility is never shorter than asked.
func seconds(d time.Duration) int32 {
	return int32((d + time.Second - 1) / time.Second)
}

func queueName(queueURL string) string {
	if u, err := url.Parse(queueURL); err == nil && u.Path != "" {
		return path.Base(u.Path)
	}
	return queueURL
}

type nopObserver struct{}

func (nopObserver) Polled(string, int, error) {}
