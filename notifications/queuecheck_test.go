package notifications

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesqs"
)

func TestCheckQueues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		opts          fakesqs.QueueOptions
		missing       bool
		wantDLQ       bool
		wantViolation bool
		wantUnready   bool
		wantLog       string
	}{
		{name: "SSE-KMS with a dead-letter queue", opts: fakesqs.QueueOptions{KMSKeyID: "alias/lwa", MaxReceiveCount: 5, DeadLetter: "dlq"}, wantDLQ: true},
		{name: "SSE-SQS without a dead-letter queue", opts: fakesqs.QueueOptions{SSE: true},
			wantLog: "queue has no dead-letter queue: messages the daemon refuses come back forever"},
		{name: "unencrypted", opts: fakesqs.QueueOptions{MaxReceiveCount: 5, DeadLetter: "dlq"}, wantDLQ: true, wantViolation: true},
		{name: "unreachable", missing: true, wantUnready: true, wantLog: "queue unreachable at start-up"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := fakesqs.New(fakeclock.New(epoch))
			dlq := f.CreateQueue("dlq", fakesqs.QueueOptions{})
			url := f.URL("q")
			if !tc.missing {
				url = f.CreateQueue("q", tc.opts)
			}
			core, logs := observer.New(zap.DebugLevel)
			obs := newFakeObserver()
			dlqs, violations := CheckQueues(context.Background(), f, []string{url}, obs, zap.New(core))
			want := map[string]string{}
			if tc.wantDLQ {
				want[url] = dlq
			}
			if !maps.Equal(dlqs, want) {
				t.Errorf("dead-letter queues = %v, want %v", dlqs, want)
			}
			var wantViolations []string
			if tc.wantViolation {
				wantViolations = []string{fmt.Sprintf("queue %s has no server-side encryption (SSE-KMS or SSE-SQS)", url)}
			}
			if !slices.Equal(violations, wantViolations) {
				t.Errorf("violations = %q, want %q", violations, wantViolations)
			}
			if p := <-obs.polls; (p.err != nil) != tc.wantUnready {
				t.Errorf("readiness told %+v, want an error %v", p, tc.wantUnready)
			}
			if tc.wantLog != "" && logs.FilterMessage(tc.wantLog).Len() != 1 {
				t.Errorf("log %q missing from %v", tc.wantLog, logs.All())
			}
		})
	}
}

// depths records what a DeadLetterWatcher reports: {queue, depth}, {"failed", queue} and
// {"read", at}.
type depths chan [2]any

func (d depths) DeadLetters(queue string, n int)   { d <- [2]any{queue, n} }
func (d depths) DeadLetterReadFailed(queue string) { d <- [2]any{"failed", queue} }
func (d depths) DeadLettersRead(at time.Time)      { d <- [2]any{"read", at} }

func TestDeadLetterWatcher(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(epoch)
	f := fakesqs.New(clk)
	dlq := f.CreateQueue("dlq", fakesqs.QueueOptions{})
	ctx := context.Background()
	for _, b := range []string{"a", "b"} {
		if _, err := f.Send(ctx, dlq, b, fakesqs.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// One of them in flight: it still counts.
	if _, err := f.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MaxNumberOfMessages: 1, VisibilityTimeout: 60}); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	got := make(depths, 8)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	w := &DeadLetterWatcher{SQS: f, Queues: []DeadLetterQueue{{Label: "expiry", URL: dlq}, {Label: "gone", URL: f.URL("missing")}},
		Every: 10 * time.Second, Clock: clk, Observer: got, Log: zap.New(core)}
	go func() { w.Run(runCtx); close(done) }()

	round := func(timers int) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, guard)
		defer wcancel()
		if err := clk.WaitCreated(wctx, timers); err != nil {
			t.Fatalf("watcher did not wait for its next round: %v", err)
		}
	}
	round(1)
	if d := <-got; d != [2]any{"expiry", 2} {
		t.Errorf("first round = %v, want expiry 2", d)
	}
	if d := <-got; d != [2]any{"failed", "gone"} {
		t.Errorf("first round = %v, want the missing queue's read failed", d)
	}
	if _, err := f.Send(ctx, dlq, "c", fakesqs.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Second)
	round(2)
	if d := <-got; d != [2]any{"expiry", 3} {
		t.Errorf("second round = %v, want expiry 3", d)
	}
	if d := <-got; d != [2]any{"failed", "gone"} {
		t.Errorf("second round = %v, want the missing queue's read failed", d)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(guard):
		t.Fatal("watcher did not stop")
	}
	if len(got) != 0 {
		t.Errorf("unexpected depths %v", <-got)
	}
	// The missing queue's failed reads were logged, once per round, and skipped; no round read
	// every queue, so none said the depths were fresh.
	if n := logs.FilterMessage("reading the dead-letter queue's depth").Len(); n != 2 {
		t.Errorf("%d failed reads logged, want 2 (the missing queue, each round)", n)
	}
}
