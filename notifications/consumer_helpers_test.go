package notifications

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesqs"
)

// guard bounds every wait in the unit tests; hitting it is a failure, never the normal path.
const guard = 10 * time.Second

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const testQueue = "lwa-new-secret"

type polled struct {
	received int
	err      error
}

type actionFailure struct {
	action Action
	err    error
}

type fakeObserver struct {
	polls    chan polled
	failures chan actionFailure
}

func newFakeObserver() *fakeObserver {
	return &fakeObserver{polls: make(chan polled, 64), failures: make(chan actionFailure, 64)}
}

func (o *fakeObserver) Polled(_ string, n int, err error) { o.polls <- polled{n, err} }
func (o *fakeObserver) ActionFailed(_ string, a Action, err error) {
	o.failures <- actionFailure{a, err}
}

// recordingClock remembers every timer duration, so backoff can be checked exactly.
type recordingClock struct {
	*fakeclock.Fake
	mu sync.Mutex
	ds []time.Duration
}

func (c *recordingClock) NewTimer(d time.Duration) clock.Timer {
	c.mu.Lock()
	c.ds = append(c.ds, d)
	c.mu.Unlock()
	return c.Fake.NewTimer(d)
}

func (c *recordingClock) durations() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.ds...)
}

// world is an SQS with one queue. The SQS keeps its own fake clock, so the consumer's clock
// holds only the consumer's timers (which the tests count) and a long poll on an empty queue
// lasts until the test moves sqsClock or stops the consumer.
type world struct {
	sqs      *fakesqs.Fake
	sqsClock *fakeclock.Fake
	url      string
	bodies   map[string]string // message id to body, to name messages in call logs
}

func newWorld(t *testing.T, bodies ...string) *world {
	t.Helper()
	return newWorldAt(t, epoch, bodies...)
}

// newWorldAt is a world whose SQS clock starts at start.
func newWorldAt(t *testing.T, start time.Time, bodies ...string) *world {
	t.Helper()
	w := &world{sqsClock: fakeclock.New(start), bodies: map[string]string{}}
	w.sqs = fakesqs.New(w.sqsClock)
	w.url = w.sqs.CreateQueue(testQueue, fakesqs.QueueOptions{VisibilityTimeout: time.Minute})
	for _, b := range bodies {
		w.send(t, b, fakesqs.SendOptions{})
	}
	return w
}

func (w *world) send(t *testing.T, body string, o fakesqs.SendOptions) string {
	t.Helper()
	id, err := w.sqs.Send(context.Background(), w.url, body, o)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	w.bodies[id] = body
	return id
}

// actions are the consumer's deletes and visibility changes as "delete m1" / "vis m1 60",
// naming each message by its body.
func (w *world) actions(calls []fakesqs.Call) []string {
	var out []string
	for _, c := range calls {
		switch c.Op {
		case fakesqs.OpDeleteMessage:
			out = append(out, "delete "+w.bodies[c.MessageID])
		case fakesqs.OpChangeMessageVisibility:
			out = append(out, fmt.Sprintf("vis %s %d", w.bodies[c.MessageID], c.VisibilityTimeout))
		}
	}
	return out
}

func (w *world) calls() []string { return w.actions(w.sqs.Calls()) }

// waitReceives blocks until the consumer has called ReceiveMessage n times in all and returns
// the n-th request.
func (w *world) waitReceives(t *testing.T, n int) *sqs.ReceiveMessageInput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := w.sqs.WaitCount(ctx, fakesqs.OpReceiveMessage, n); err != nil {
		t.Fatalf("consumer did not poll: %v", err)
	}
	seen := 0
	for _, c := range w.sqs.Calls() {
		if c.Op == fakesqs.OpReceiveMessage {
			if seen++; seen == n {
				return c.Input.(*sqs.ReceiveMessageInput)
			}
		}
	}
	return nil
}

// waitAction blocks until the consumer's i-th action (from 0) happened and checks it.
func (w *world) waitAction(t *testing.T, i int, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := w.sqs.WaitCalls(ctx, func(c []fakesqs.Call) bool { return len(w.actions(c)) > i }); err != nil {
		t.Fatalf("no SQS call, want %q: %v", want, err)
	}
	if got := w.calls()[i]; got != want {
		t.Fatalf("SQS call %d = %q, want %q", i, got, want)
	}
}

// running is a Consumer started in the background with fakes filled in.
type running struct {
	*world
	clock  *fakeclock.Fake
	obs    *fakeObserver
	cancel context.CancelFunc
	done   chan error
}

// startConsumer runs c over w (a fresh world when nil), on a fake clock unless c has one.
func startConsumer(t *testing.T, c *Consumer, w *world) *running {
	t.Helper()
	if w == nil {
		w = newWorld(t)
	}
	r := &running{world: w, clock: fakeclock.New(epoch), obs: newFakeObserver(), done: make(chan error, 1)}
	if c.SQS == nil {
		c.SQS = w.sqs
	}
	if c.Clock == nil {
		c.Clock = r.clock
	} else {
		r.clock = c.Clock.(*recordingClock).Fake
	}
	c.QueueURL = w.url
	c.Observer = r.obs
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(cancel)
	return r
}

// stop cancels Run and returns its result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(guard):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}
