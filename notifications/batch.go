package notifications

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// handleBatch works through one receive's messages in order. One heartbeat timer covers the whole
// batch, so the messages still waiting their turn never expire behind a slow handler.
func (r *run) handleBatch(ctx context.Context, batch []Message) {
	if len(batch) == 0 {
		return
	}
	// Calls about messages already in hand must complete during shutdown too: an unfinished
	// delete brings a finished message back, an unfinished release delays the next replica.
	work := context.WithoutCancel(ctx)
	for i := range batch {
		batch[i].Stop = ctx.Done()
	}
	if r.Concurrency > 1 {
		r.handleGroups(ctx, work, batch)
		return
	}
	hb := r.Clock.NewTimer(r.VisibilityTimeout / 2)
	defer func() { hb.Stop() }()
	for i, m := range batch {
		if ctx.Err() != nil {
			r.release(work, batch[i:])
			return
		}
		res := r.handleOne(work, m, batch[i:], &hb)
		r.apply(work, m, res)
		if res.Then != nil {
			r.heartbeat(work, batch[i+1:], &hb, func() { r.then(work, m, res.Then) })
		}
	}
}

// handleGroups handles a batch's messages grouped by client id: up to Concurrency groups at
// once, each group's messages one at a time in the order received. One heartbeat extends every
// message not yet finished; on shutdown, messages no group reached are released.
func (r *run) handleGroups(ctx, work context.Context, batch []Message) {
	var mu sync.Mutex // guards open; never held across a call
	open := make(map[string]Message, len(batch))
	for _, m := range batch {
		open[m.ReceiptHandle] = m
	}
	remaining := func() []Message {
		mu.Lock()
		defer mu.Unlock()
		out := make([]Message, 0, len(open))
		for _, m := range batch {
			if _, ok := open[m.ReceiptHandle]; ok {
				out = append(out, m)
			}
		}
		return out
	}
	sem := make(chan struct{}, r.Concurrency)
	var wg sync.WaitGroup
	for _, g := range byClient(batch) {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, m := range g {
				if ctx.Err() != nil {
					return // left open: released below
				}
				res := r.call(work, m)
				r.apply(work, m, res)
				mu.Lock()
				delete(open, m.ReceiptHandle)
				mu.Unlock()
				if res.Then != nil {
					r.then(work, m, res.Then)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	hb := r.Clock.NewTimer(r.VisibilityTimeout / 2)
	defer func() { hb.Stop() }()
	for {
		select {
		case <-done:
			if rest := remaining(); len(rest) > 0 {
				r.release(work, rest)
			}
			return
		case <-hb.C():
			r.extend(work, remaining())
			hb = r.Clock.NewTimer(r.VisibilityTimeout / 2)
		}
	}
}

// byClient splits a batch into per-client runs, each in the order received; a body without a
// readable client id is its own group (it is refused quickly anyway).
func byClient(batch []Message) [][]Message {
	var groups [][]Message
	index := map[string]int{}
	for _, m := range batch {
		id := ClientIDOf(m.Body)
		if id == "" {
			groups = append(groups, []Message{m})
			continue
		}
		if i, ok := index[id]; ok {
			groups[i] = append(groups[i], m)
			continue
		}
		index[id] = len(groups)
		groups = append(groups, []Message{m})
	}
	return groups
}

// handleOne runs the handler while heartbeating held (the message itself and those after it).
func (r *run) handleOne(ctx context.Context, m Message, held []Message, hb *clock.Timer) Result {
	var res Result
	r.heartbeat(ctx, held, hb, func() { res = r.call(ctx, m) })
	return res
}

// heartbeat runs f on its own goroutine, extending held every half visibility timeout until f
// returns.
func (r *run) heartbeat(ctx context.Context, held []Message, hb *clock.Timer, f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	for {
		select {
		case <-done:
			return
		case <-(*hb).C():
			r.extend(ctx, held)
			*hb = r.Clock.NewTimer(r.VisibilityTimeout / 2)
		}
	}
}

// then runs a handler's follow-up work; a panic there is logged like the handler's own, and the
// message's fate is already settled.
func (r *run) then(ctx context.Context, m Message, f func(context.Context)) {
	defer func() {
		if v := recover(); v != nil {
			r.Log.Error("follow-up work of a handled message panicked", zap.String("message_id", m.ID),
				zap.String("panic_type", fmt.Sprintf("%T", v)), zap.Stack("stack"))
		}
	}()
	f(ctx)
}

// call turns a handler panic into "leave the message": it comes back, and after maxReceiveCount
// the queue's redrive policy parks it, instead of one message crashing the daemon in a loop.
func (r *run) call(ctx context.Context, m Message) (res Result) {
	defer func() {
		if v := recover(); v != nil {
			// The panic value could hold message content, so only its type is logged.
			r.Log.Error("handler panicked; message left for redelivery", zap.String("message_id", m.ID),
				zap.String("panic_type", fmt.Sprintf("%T", v)), zap.Stack("stack"))
			res = Result{}
		}
	}()
	return r.Handler.Handle(ctx, m)
}

func (r *run) apply(ctx context.Context, m Message, res Result) {
	log := r.Log.With(zap.String("message_id", m.ID), zap.Int("receive_count", m.ReceiveCount))
	switch {
	case res.Delete:
		_, err := r.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.QueueURL), ReceiptHandle: aws.String(m.ReceiptHandle)})
		if err != nil {
			r.actionFailed(ActionDelete, m, err)
			log.Error("deleting handled message failed; it will be delivered again", zap.Error(err))
			return
		}
		log.Debug("message deleted")
	case res.RetryAfter > 0:
		d := r.retryDelay(m, res.RetryAfter)
		if err := r.setVisibility(ctx, m, d); err != nil {
			r.actionFailed(ActionRetry, m, err)
			log.Warn("delaying message failed; it returns after its current visibility", zap.Duration("retry_after", d), zap.Error(err))
			return
		}
		log.Debug("message delayed", zap.Duration("retry_after", d))
	default:
		log.Debug("message left for redelivery")
	}
}

// visibilityMargin keeps a delay clear of SQS's limit, for the clock skew between us and SQS.
const visibilityMargin = time.Minute

// retryDelay is the visibility a retried message gets: what the handler asked for, but never past
// SQS's 12 hours from the receipt, which SQS refuses (the message would come back at once).
func (r *run) retryDelay(m Message, want time.Duration) time.Duration {
	if m.ReceivedAt.IsZero() {
		return min(want, MaxVisibility)
	}
	room := MaxVisibility - r.Clock.Now().Sub(m.ReceivedAt) - visibilityMargin
	return max(min(want, room), 0)
}

func (r *run) extend(ctx context.Context, held []Message) {
	for _, m := range held {
		if err := r.setVisibility(ctx, m, r.VisibilityTimeout); err != nil {
			r.actionFailed(ActionExtend, m, err)
			r.Log.Warn("extending visibility failed", zap.String("message_id", m.ID), zap.Error(err))
		}
	}
}

// release makes messages nobody will handle in this run visible at once, so another replica (or
// the next start) need not wait out their visibility.
func (r *run) release(ctx context.Context, rest []Message) {
	for _, m := range rest {
		if err := r.setVisibility(ctx, m, 0); err != nil {
			r.actionFailed(ActionRelease, m, err)
			r.Log.Warn("releasing message failed; it returns after its visibility", zap.String("message_id", m.ID), zap.Error(err))
		}
	}
	r.Log.Info("shutting down: released unhandled messages", zap.Int("count", len(rest)))
}

func (r *run) setVisibility(ctx context.Context, m Message, d time.Duration) error {
	_, err := r.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(r.QueueURL),
		ReceiptHandle:     aws.String(m.ReceiptHandle),
		VisibilityTimeout: seconds(d),
	})
	if err != nil {
		return fmt.Errorf("setting visibility of message %s to %v: %w", m.ID, d, err)
	}
	return nil
}

func (r *run) actionFailed(a Action, m Message, err error) {
	if o, ok := r.Observer.(ActionObserver); ok {
		o.ActionFailed(r.QueueURL, a, fmt.Errorf("%s message %s on queue %s: %w", a, m.ID, r.queue, err))
	}
}
