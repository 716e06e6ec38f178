package notifications

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesqs"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

func TestConsumerAppliesResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		result Result
		want   []string
	}{
		{"delete", Result{Delete: true}, []string{"delete m1"}},
		{"delete wins over retry", Result{Delete: true, RetryAfter: time.Minute}, []string{"delete m1"}},
		{"retry after", Result{RetryAfter: 5 * time.Minute}, []string{"vis m1 300"}},
		{"retry capped under 12h from the receipt", Result{RetryAfter: 48 * time.Hour}, []string{"vis m1 43140"}},
		{"sub-second retry rounds up", Result{RetryAfter: time.Millisecond}, []string{"vis m1 1"}},
		{"leave", Result{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startConsumer(t, &Consumer{Handler: HandlerFunc(func(context.Context, Message) Result { return tc.result })}, newWorld(t, "m1"))
			r.waitReceives(t, 2) // the second poll starts only once the first batch is settled
			if err := r.stop(t); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if got := r.calls(); !slices.Equal(got, tc.want) {
				t.Errorf("SQS calls = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConsumerReceiveRequest(t *testing.T) {
	t.Parallel()
	attrs := []types.MessageSystemAttributeName{"ApproximateReceiveCount", "SenderId", "SentTimestamp"}
	tests := []struct {
		name                       string
		c                          Consumer
		wantWait, wantMax, wantVis int32
	}{
		{"defaults", Consumer{}, 20, 10, 60},
		{"custom", Consumer{WaitTime: time.Second, MaxMessages: 1, VisibilityTimeout: 1500 * time.Millisecond}, 1, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tc.c
			c.Handler = HandlerFunc(func(context.Context, Message) Result { return Result{} })
			r := startConsumer(t, &c, nil)
			in := r.waitReceives(t, 1)
			r.stop(t)
			if aws.ToString(in.QueueUrl) != c.QueueURL || in.WaitTimeSeconds != tc.wantWait ||
				in.MaxNumberOfMessages != tc.wantMax || in.VisibilityTimeout != tc.wantVis {
				t.Errorf("request = url %q wait %d max %d vis %d, want wait %d max %d vis %d", aws.ToString(in.QueueUrl),
					in.WaitTimeSeconds, in.MaxNumberOfMessages, in.VisibilityTimeout, tc.wantWait, tc.wantMax, tc.wantVis)
			}
			if !slices.Equal(in.MessageSystemAttributeNames, attrs) {
				t.Errorf("attributes = %v, want %v", in.MessageSystemAttributeNames, attrs)
			}
		})
	}
}

// mangled serves what a well-behaved SQS never sends: edit rewrites each receive's output.
type mangled struct {
	*fakesqs.Fake
	edit func(*types.Message)
}

func (m mangled) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out, err := m.Fake.ReceiveMessage(ctx, in, opts...)
	if out != nil {
		for i := range out.Messages {
			m.edit(&out.Messages[i])
		}
	}
	return out, err
}

func TestConsumerMessageFields(t *testing.T) {
	t.Parallel()
	sent := time.UnixMilli(1704924557456).UTC()
	w := newWorldAt(t, sent)
	full := w.send(t, "body-m1", fakesqs.SendOptions{SenderID: "AIDAEXAMPLE"})
	w.send(t, "x", fakesqs.SendOptions{})
	w.send(t, "{}", fakesqs.SendOptions{})
	// Two earlier receives, each given back, make the consumer's the third.
	for range 2 {
		out, err := w.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(w.url), MaxNumberOfMessages: 1})
		if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].MessageId) != full {
			t.Fatalf("ReceiveMessage = %v, %v", out, err)
		}
		if _, err := w.sqs.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(w.url),
			ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	client := mangled{Fake: w.sqs, edit: func(m *types.Message) {
		switch aws.ToString(m.Body) {
		case "x":
			m.ReceiptHandle = nil
		case "{}":
			m.Attributes = map[string]string{"ApproximateReceiveCount": "many"}
		}
	}}

	got := make(chan Message, 3)
	r := startConsumer(t, &Consumer{SQS: client, Handler: HandlerFunc(func(_ context.Context, m Message) Result { got <- m; return Result{} })}, w)
	r.waitReceives(t, 4) // the test's two, the consumer's batch, its next poll
	r.stop(t)
	close(got)
	var msgs []Message
	for m := range got {
		// Stop tells a handler holding the message that the consumer is gone: closed by now.
		select {
		case <-m.Stop:
		default:
			t.Errorf("message %s: Stop is nil or still open after the consumer stopped", m.ID)
		}
		m.Stop = nil
		msgs = append(msgs, m)
	}
	stored := w.sqs.Messages(w.url)
	// Held at most 12 h from the receipt, less two default visibility timeouts and the margin.
	hold := epoch.Add(MaxVisibility - 2*time.Minute - visibilityMargin)
	want := []Message{
		{ID: full, ReceiptHandle: stored[0].ReceiptHandle, QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/lwa-new-secret",
			SenderID: "AIDAEXAMPLE", Body: []byte("body-m1"), ReceiveCount: 3, SentAt: sent, ReceivedAt: epoch, HoldUntil: hold},
		{ID: stored[2].ID, ReceiptHandle: stored[2].ReceiptHandle, QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/lwa-new-secret", Body: []byte("{}"), ReceivedAt: epoch, HoldUntil: hold},
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("messages =\n%+v\nwant\n%+v", msgs, want)
	}
}

func TestConsumerHeartbeat(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	handler := HandlerFunc(func(_ context.Context, m Message) Result {
		if string(m.Body) == "m1" {
			close(started)
			<-release
		}
		return Result{Delete: true}
	})
	clk := &recordingClock{Fake: fakeclock.New(epoch)}
	r := startConsumer(t, &Consumer{Handler: handler, Clock: clk, VisibilityTimeout: time.Minute}, newWorld(t, "m1", "m2"))
	<-started
	for beat := range 2 {
		r.clock.Advance(30 * time.Second)
		// The message in hand and the one waiting behind it are both kept invisible.
		r.waitAction(t, 2*beat, "vis m1 60")
		r.waitAction(t, 2*beat+1, "vis m2 60")
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		if err := r.clock.WaitCreated(ctx, beat+2); err != nil {
			t.Fatalf("heartbeat was not re-armed: %v", err)
		}
		cancel()
	}
	close(release)
	r.waitAction(t, 4, "delete m1")
	r.waitAction(t, 5, "delete m2")
	r.waitReceives(t, 2)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got, want := clk.durations(), []time.Duration{30 * time.Second, 30 * time.Second, 30 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("heartbeat timers = %v, want %v (every half visibility timeout)", got, want)
	}
	if r.clock.Pending() != 0 {
		t.Errorf("%d timers left armed after the batch", r.clock.Pending())
	}
}

func TestConsumerDrainsOnCancel(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	handlerCtxErr := make(chan error, 1)
	handled := make(chan string, 3)
	handler := HandlerFunc(func(ctx context.Context, m Message) Result {
		handled <- m.ID
		close(started)
		<-release
		handlerCtxErr <- ctx.Err()
		return Result{Delete: true}
	})
	r := startConsumer(t, &Consumer{Handler: handler}, newWorld(t, "m1", "m2", "m3"))
	<-started
	r.cancel()
	close(release)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if err := <-handlerCtxErr; err != nil {
		t.Errorf("handler context was cancelled by shutdown: %v", err)
	}
	want := []string{"delete m1", "vis m2 0", "vis m3 0"}
	if got := r.calls(); !slices.Equal(got, want) {
		t.Errorf("SQS calls = %q, want %q", got, want)
	}
	close(handled)
	if n := len(handled); n != 1 {
		t.Errorf("handler ran %d times during shutdown, want 1", n)
	}
}

func TestConsumerStopsDuringLongPoll(t *testing.T) {
	t.Parallel()
	r := startConsumer(t, &Consumer{Handler: HandlerFunc(func(context.Context, Message) Result { return Result{} })}, nil)
	r.waitReceives(t, 1)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	select {
	case p := <-r.obs.polls:
		t.Errorf("shutdown reported as a poll: %+v", p)
	default:
	}
}

func TestConsumerReceiveBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		jitter float64
		want   []time.Duration // milliseconds
	}{
		{"grows then caps", 1, []time.Duration{1000, 2000, 4000, 8000, 10000, 10000, 1000}},
		{"jittered", 0.5, []time.Duration{500, 1000, 2000, 4000, 5000, 5000, 500}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := &recordingClock{Fake: fakeclock.New(epoch)}
			boom := errors.New("sqs unavailable")
			w := newWorld(t)
			var failing atomic.Bool
			failing.Store(true)
			w.sqs.SetFault(func(c fakesqs.Call) fakesqs.Fault {
				if c.Op == fakesqs.OpReceiveMessage && failing.Load() {
					return fakesqs.Fault{Err: boom}
				}
				return fakesqs.Fault{}
			})
			r := startConsumer(t, &Consumer{Handler: HandlerFunc(func(context.Context, Message) Result { return Result{} }),
				Clock: clk, MinBackoff: time.Second, MaxBackoff: 10 * time.Second,
				Rand: func() float64 { return tc.jitter }}, w)
			timers, receives := 0, 0
			// fail lets n receives fail; the receive after them succeeds when then is false. The
			// last backoff is waited out only when more receives are to come (last false): moving
			// the clock past it would let one more failing receive start a timer the test does
			// not expect.
			fail := func(n int, then, last bool) {
				for i := range n {
					timers++
					receives++
					r.waitReceives(t, receives)
					ctx, cancel := context.WithTimeout(context.Background(), guard)
					if err := clk.WaitCreated(ctx, timers); err != nil {
						t.Fatalf("no backoff timer: %v", err)
					}
					cancel()
					if p := <-r.obs.polls; !errors.Is(p.err, boom) || p.received != 0 {
						t.Fatalf("observer got %+v, want the receive error", p)
					}
					if i == n-1 {
						failing.Store(then)
						if last {
							break
						}
					}
					clk.Advance(time.Minute)
				}
			}
			fail(6, false, false)
			// A success resets the backoff: an empty long poll, ended by the SQS's clock.
			receives++
			r.waitReceives(t, receives)
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			if err := w.sqsClock.WaitCreated(ctx, 1); err != nil {
				t.Fatalf("the receive did not long-poll: %v", err)
			}
			cancel()
			failing.Store(true)
			w.sqsClock.Advance(20 * time.Second)
			if p := <-r.obs.polls; p.err != nil {
				t.Fatalf("observer got %+v after a good poll", p)
			}
			fail(1, true, true)
			r.stop(t)
			var want []time.Duration
			for _, d := range tc.want {
				want = append(want, d*time.Millisecond)
			}
			if got := clk.durations(); !slices.Equal(got, want) {
				t.Errorf("backoff = %v, want %v", got, want)
			}
		})
	}
}

func TestConsumerReportsFailedDelete(t *testing.T) {
	t.Parallel()
	deleteErr := errors.New("AccessDenied")
	w := newWorld(t, "m1")
	w.sqs.SetFault(func(c fakesqs.Call) fakesqs.Fault {
		if c.Op == fakesqs.OpDeleteMessage {
			return fakesqs.Fault{Err: deleteErr}
		}
		return fakesqs.Fault{}
	})
	r := startConsumer(t, &Consumer{Handler: HandlerFunc(func(context.Context, Message) Result { return Result{Delete: true} })}, w)
	r.waitReceives(t, 2) // it keeps polling after the failure
	r.stop(t)
	if left := w.sqs.Messages(w.url); len(left) != 1 {
		t.Errorf("%d messages left, want the one whose delete failed", len(left))
	}
	select {
	case f := <-r.obs.failures:
		if f.action != ActionDelete || !errors.Is(f.err, deleteErr) {
			t.Errorf("failure = %+v, want a delete failure wrapping the SQS error", f)
		}
	default:
		t.Fatal("failed delete was not reported")
	}
}

func TestConsumerSurvivesHandlerPanic(t *testing.T) {
	t.Parallel()
	r := startConsumer(t, &Consumer{Handler: HandlerFunc(func(_ context.Context, m Message) Result {
		if string(m.Body) == "m1" {
			panic("handler bug")
		}
		return Result{Delete: true}
	})}, newWorld(t, "m1", "m2"))
	r.waitReceives(t, 2)
	r.stop(t)
	if got, want := r.calls(), []string{"delete m2"}; !slices.Equal(got, want) {
		t.Errorf("SQS calls = %q, want %q (the panicking message stays)", got, want)
	}
}

var _ SQS = (*sqs.Client)(nil)

func TestHandlerPanicNeverLogsTheSecret(t *testing.T) {
	t.Parallel()
	const plain = "amzn1.oa2-cs.v1.panicpanicpanicpanic0123456789"
	core, logs := observer.New(zap.DebugLevel)
	panics := []any{plain, secret.New(plain), fmt.Errorf("verifying %s", plain)}
	for i, v := range panics {
		r := startConsumer(t, &Consumer{Log: zap.New(core), Handler: HandlerFunc(func(context.Context, Message) Result { panic(v) })},
			newWorld(t, fmt.Sprintf("p%d", i)))
		r.waitReceives(t, 2)
		r.stop(t)
	}
	if n := logs.FilterMessage("handler panicked; message left for redelivery").Len(); n != len(panics) {
		t.Fatalf("%d panic lines logged, want %d", n, len(panics))
	}
	for _, e := range logs.All() {
		if strings.Contains(fmt.Sprint(e.Message, e.ContextMap()), "panicpanic") {
			t.Fatalf("a log line carries the secret from a panic value: %v", e.ContextMap())
		}
	}
}

func TestRetryDelayStaysUnderSQSTwelveHoursFromTheReceipt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		workedFor     time.Duration
		want, granted time.Duration
	}{
		{"short delay unchanged", time.Minute, 15 * time.Minute, 15 * time.Minute},
		{"long work leaves less room", 11 * time.Hour, 2 * time.Hour, 59 * time.Minute},
		{"no room left", 12 * time.Hour, time.Hour, 0},
		{"12h asked right after the receipt", 0, 12 * time.Hour, 12*time.Hour - time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := fakeclock.New(epoch)
			r := &run{Consumer: Consumer{Clock: c}}
			m := Message{ReceivedAt: c.Now()}
			c.Advance(tc.workedFor)
			if got := r.retryDelay(m, tc.want); got != tc.granted {
				t.Errorf("retryDelay(%s after %s of work) = %s, want %s", tc.want, tc.workedFor, got, tc.granted)
			}
		})
	}
}

func TestConsumerPoll(t *testing.T) {
	t.Parallel()
	boom := errors.New("sqs unavailable")
	tests := []struct {
		name         string
		bodies       []string
		fail         bool
		cancelled    bool
		wantReceived int
		wantErr      error
		wantPolls    []polled
		wantLeft     int
	}{
		{name: "one receive, its batch handled", bodies: []string{"m1", "m2"}, wantReceived: 2, wantPolls: []polled{{2, nil}}},
		{name: "a failed receive is returned and reported", bodies: []string{"m1"}, fail: true, wantErr: boom,
			wantPolls: []polled{{0, boom}}, wantLeft: 1},
		{name: "a cancelled receive is not a failure", bodies: []string{"m1"}, cancelled: true, wantErr: context.Canceled, wantLeft: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// One fake clock for the consumer and SQS: the deterministic driver's set-up.
			clk := fakeclock.New(epoch)
			f := fakesqs.New(clk)
			url := f.CreateQueue(testQueue, fakesqs.QueueOptions{})
			for _, b := range tc.bodies {
				if _, err := f.Send(context.Background(), url, b, fakesqs.SendOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.fail {
				f.SetFault(func(c fakesqs.Call) fakesqs.Fault {
					if c.Op == fakesqs.OpReceiveMessage {
						return fakesqs.Fault{Err: boom}
					}
					return fakesqs.Fault{}
				})
			}
			obs := newFakeObserver()
			var handled []string
			c := &Consumer{SQS: f, QueueURL: url, Clock: clk, Observer: obs,
				Handler: HandlerFunc(func(_ context.Context, m Message) Result {
					handled = append(handled, string(m.Body))
					return Result{Delete: true}
				})}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			n, err := c.Poll(ctx)
			if n != tc.wantReceived || !errors.Is(err, tc.wantErr) {
				t.Errorf("Poll = %d, %v; want %d, %v", n, err, tc.wantReceived, tc.wantErr)
			}
			if len(handled) != tc.wantReceived {
				t.Errorf("handled %q, want %d messages", handled, tc.wantReceived)
			}
			close(obs.polls)
			var polls []polled
			for p := range obs.polls {
				polls = append(polls, p)
			}
			if len(polls) != len(tc.wantPolls) {
				t.Fatalf("observer got %+v, want %+v", polls, tc.wantPolls)
			}
			for i, p := range polls {
				if p.received != tc.wantPolls[i].received || !errors.Is(p.err, tc.wantPolls[i].err) {
					t.Errorf("poll %d = %+v, want %+v", i, p, tc.wantPolls[i])
				}
			}
			if left := len(f.Messages(url)); left != tc.wantLeft {
				t.Errorf("%d messages left, want %d", left, tc.wantLeft)
			}
			if got := f.Count(fakesqs.OpReceiveMessage); got != 1 && !tc.cancelled {
				t.Errorf("%d receives, want exactly 1", got)
			}
		})
	}
}

func TestConsumerPollRejectsBadConfig(t *testing.T) {
	t.Parallel()
	if _, err := (&Consumer{}).Poll(context.Background()); !errors.Is(err, ErrConfig) {
		t.Errorf("Poll = %v, want ErrConfig", err)
	}
}
