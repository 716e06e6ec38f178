package notifications

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// guard bounds every wait in the unit tests; hitting it is a failure, never the normal path.
const guard = 10 * time.Second

type receiveResp struct {
	msgs []types.Message
	err  error
}

// fakeSQS serves queued receive responses and blocks like a long poll when none is queued. It
// records every delete and visibility change as "delete h" / "vis h 60".
type fakeSQS struct {
	responses chan receiveResp
	receives  chan *sqs.ReceiveMessageInput
	actions   chan string
	deleteErr error

	mu  sync.Mutex
	log []string
}

func newFakeSQS() *fakeSQS {
	return &fakeSQS{responses: make(chan receiveResp, 16), receives: make(chan *sqs.ReceiveMessageInput, 64), actions: make(chan string, 256)}
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.receives <- in
	select {
	case r := <-f.responses:
		return &sqs.ReceiveMessageOutput{Messages: r.msgs}, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("long poll: %w", ctx.Err())
	}
}

func (f *fakeSQS) record(s string) {
	f.mu.Lock()
	f.log = append(f.log, s)
	f.mu.Unlock()
	f.actions <- s
}

func (f *fakeSQS) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	f.record("delete " + aws.ToString(in.ReceiptHandle))
	if f.deleteErr != nil {
		return nil, f.deleteErr
	}
	return &sqs.DeleteMessageOutput{}, nil
}

func (f *fakeSQS) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	f.record(fmt.Sprintf("vis %s %d", aws.ToString(in.ReceiptHandle), in.VisibilityTimeout))
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (f *fakeSQS) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

// waitReceives blocks until the consumer has called ReceiveMessage n more times.
func (f *fakeSQS) waitReceives(t *testing.T, n int) *sqs.ReceiveMessageInput {
	t.Helper()
	var in *sqs.ReceiveMessageInput
	for range n {
		select {
		case in = <-f.receives:
		case <-time.After(guard):
			t.Fatalf("consumer did not poll")
		}
	}
	return in
}

func (f *fakeSQS) waitAction(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-f.actions:
		if got != want {
			t.Fatalf("SQS call %q, want %q", got, want)
		}
	case <-time.After(guard):
		t.Fatalf("no SQS call, want %q", want)
	}
}

func msg(id string) types.Message {
	return types.Message{MessageId: aws.String(id), ReceiptHandle: aws.String("h-" + id), Body: aws.String("body-" + id),
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
}

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
	*clock.Fake
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

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// running is a Consumer started in the background with fakes filled in.
type running struct {
	sqs    *fakeSQS
	clock  *clock.Fake
	obs    *fakeObserver
	cancel context.CancelFunc
	done   chan error
}

func startConsumer(t *testing.T, c *Consumer) *running {
	t.Helper()
	r := &running{sqs: newFakeSQS(), clock: clock.NewFake(epoch), obs: newFakeObserver(), done: make(chan error, 1)}
	if c.SQS == nil {
		c.SQS = r.sqs
	} else {
		r.sqs = c.SQS.(*fakeSQS)
	}
	if c.Clock == nil {
		c.Clock = r.clock
	} else {
		r.clock = c.Clock.(*recordingClock).Fake
	}
	c.QueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/lwa-new-secret"
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
