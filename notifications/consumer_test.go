package notifications

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

func TestConsumerAppliesResult(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		result Result
		want   []string
	}{
		{"delete", Result{Delete: true}, []string{"delete h-m1"}},
		{"delete wins over retry", Result{Delete: true, RetryAfter: time.Minute}, []string{"delete h-m1"}},
		{"retry after", Result{RetryAfter: 5 * time.Minute}, []string{"vis h-m1 300"}},
		{"retry capped under 12h from the receipt", Result{RetryAfter: 48 * time.Hour}, []string{"vis h-m1 43140"}},
		{"sub-second retry rounds up", Result{RetryAfter: time.Millisecond}, []string{"vis h-m1 1"}},
		{"leave", Result{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := startConsumer(t, &Consumer{Handler: HandlerFunc(func(context.Context, Message) Result { return tc.result })})
			r.sqs.responses <- receiveResp{msgs: []types.Message{msg("m1")}}
			r.sqs.waitReceives(t, 2) // the second poll starts only once the first batch is settled
			if err := r.stop(t); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if got := r.sqs.calls(); !slices.Equal(got, tc.want) {
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
			r := startConsumer(t, &c)
			in := r.sqs.waitReceives(t, 1)
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

func TestConsumerMessageFields(t *testing.T) {
	t.Parallel()
	full := msg("m1")
	full.Attributes = map[string]string{"ApproximateReceiveCount": "3", "SenderId": "AIDAEXAMPLE", "SentTimestamp": "1704924557456"}
	bare := types.Message{MessageId: aws.String("m2"), ReceiptHandle: aws.String("h-m2"), Body: aws.String("{}"),
		Attributes: map[string]string{"ApproximateReceiveCount": "many"}}
	noHandle := types.Message{MessageId: aws.String("m3"), Body: aws.String("x")}

	got := make(chan Message, 3)
	r := startConsumer(t, &Consumer{Handler: HandlerFunc(func(_ context.Context, m Message) Result { got <- m; return Result{} })})
	r.sqs.responses <- receiveResp{msgs: []types.Message{full, noHandle, bare}}
	r.sqs.waitReceives(t, 2)
	r.stop(t)
	close(got)
	var msgs []Message
	for m := range got {
		msgs = append(msgs, m)
	}
	want := []Message{
		{ID: "m1", ReceiptHandle: "h-m1", QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/lwa-new-secret",
			SenderID: "AIDAEXAMPLE", Body: []byte("body-m1"), ReceiveCount: 3, SentAt: time.UnixMilli(1704924557456).UTC(), ReceivedAt: epoch},
		{ID: "m2", ReceiptHandle: "h-m2", QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/lwa-new-secret", Body: []byte("{}"), ReceivedAt: epoch},
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("messages =\n%+v\nwant\n%+v", msgs, want)
	}
}

func TestConsumerHeartbeat(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	handler := HandlerFunc(func(_ context.Context, m Message) Result {
		if m.ID == "m1" {
			close(started)
			<-release
		}
		return Result{Delete: true}
	})
	clk := &recordingClock{Fake: clock.NewFake(epoch)}
	r := startConsumer(t, &Consumer{Handler: handler, SQS: newFakeSQS(), Clock: clk, VisibilityTimeout: time.Minute})
	r.sqs.responses <- receiveResp{msgs: []types.Message{msg("m1"), msg("m2")}}
	<-started
	for beat := range 2 {
		r.clock.Advance(30 * time.Second)
		// The message in hand and the one waiting behind it are both kept invisible.
		r.sqs.waitAction(t, "vis h-m1 60")
		r.sqs.waitAction(t, "vis h-m2 60")
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		if err := r.clock.WaitCreated(ctx, beat+2); err != nil {
			t.Fatalf("heartbeat was not re-armed: %v", err)
		}
		cancel()
	}
	close(release)
	r.sqs.waitAction(t, "delete h-m1")
	r.sqs.waitAction(t, "delete h-m2")
	r.sqs.waitReceives(t, 2)
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
	r := startConsumer(t, &Consumer{Handler: handler})
	r.sqs.responses <- receiveResp{msgs: []types.Message{msg("m1"), msg("m2"), msg("m3")}}
	<-started
	r.cancel()
	close(release)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if err := <-handlerCtxErr; err != nil {
		t.Errorf("handler context was cancelled by shutdown: %v", err)
	}
	want := []string{"delete h-m1", "vis h-m2 0", "vis h-m3 0"}
	if got := r.sqs.calls(); !slices.Equal(got, want) {
		t.Errorf("SQS calls = %q, want %q", got, want)
	}
	close(handled)
	if n := len(handled); n != 1 {
		t.Errorf("handler ran %d times during shutdown, want 1", n)
	}
}

func TestConsumerStopsDuringLongPoll(t *testing.T) {
	t.Parallel()
	r := startConsumer(t, &Consumer{Handler: HandlerFunc(func(context.Context, Message) Result { return Result{} })})
	r.sqs.waitReceives(t, 1)
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
			clk := &recordingClock{Fake: clock.NewFake(epoch)}
			boom := errors.New("sqs unavailable")
			r := startConsumer(t, &Consumer{Handler: HandlerFunc(func(context.Context, Message) Result { return Result{} }),
				SQS: newFakeSQS(), Clock: clk, MinBackoff: time.Second, MaxBackoff: 10 * time.Second,
				Rand: func() float64 { return tc.jitter }})
			timers := 0
			fail := func(n int) {
				for range n {
					timers++
					r.sqs.responses <- receiveResp{err: boom}
					r.sqs.waitReceives(t, 1)
					ctx, cancel := context.WithTimeout(context.Background(), guard)
					if err := clk.WaitCreated(ctx, timers); err != nil {
						t.Fatalf("no backoff timer: %v", err)
					}
					cancel()
					if p := <-r.obs.polls; !errors.Is(p.err, boom) || p.received != 0 {
						t.Fatalf("observer got %+v, want the receive error", p)
					}
					clk.Advance(time.Minute)
				}
			}
			fail(6)
			r.sqs.responses <- receiveResp{} // a success resets the backoff
			r.sqs.waitReceives(t, 1)
			if p := <-r.obs.polls; p.err != nil {
				t.Fatalf("observer got %+v after a good poll", p)
			}
			fail(1)
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
	fake := newFakeSQS()
	fake.deleteErr = errors.New("AccessDenied")
	r := startConsumer(t, &Consumer{SQS: fake, Handler: HandlerFunc(func(context.Context, Message) Result { return Result{Delete: true} })})
	r.sqs.responses <- receiveResp{msgs: []types.Message{msg("m1")}}
	r.sqs.waitReceives(t, 2) // it keeps polling after the failure
	r.stop(t)
	select {
	case f := <-r.obs.failures:
		if f.action != ActionDelete || !errors.Is(f.err, fake.deleteErr) {
			t.Errorf("failure = %+v, want a delete failure wrapping the SQS error", f)
		}
	default:
		t.Fatal("failed delete was not reported")
	}
}

func TestConsumerSurvivesHandlerPanic(t *testing.T) {
	t.Parallel()
	r := startConsumer(t, &Consumer{Handler: HandlerFunc(func(_ context.Context, m Message) Result {
		if m.ID == "m1" {
			panic("handler bug")
		}
		return Result{Delete: true}
	})})
	r.sqs.responses <- receiveResp{msgs: []types.Message{msg("m1"), msg("m2")}}
	r.sqs.waitReceives(t, 2)
	r.stop(t)
	if got, want := r.sqs.calls(), []string{"delete h-m2"}; !slices.Equal(got, want) {
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
		r := startConsumer(t, &Consumer{Log: zap.New(core), Handler: HandlerFunc(func(context.Context, Message) Result { panic(v) })})
		r.sqs.responses <- receiveResp{msgs: []types.Message{msg(fmt.Sprintf("p%d", i))}}
		r.sqs.waitReceives(t, 2)
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
			c := clock.NewFake(epoch)
			r := &run{Consumer: Consumer{Clock: c}}
			m := Message{ReceivedAt: c.Now()}
			c.Advance(tc.workedFor)
			if got := r.retryDelay(m, tc.want); got != tc.granted {
				t.Errorf("retryDelay(%s after %s of work) = %s, want %s", tc.want, tc.workedFor, got, tc.granted)
			}
		})
	}
}
