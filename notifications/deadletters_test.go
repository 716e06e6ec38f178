package notifications

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesqs"
)

func TestDeadLetterURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, queue, policy, want string
		ok                        bool
	}{
		{"aws", "https://sqs.us-east-1.amazonaws.com/123456789012/lwa-new-secret",
			`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:lwa-new-secret-dlq","maxReceiveCount":"5"}`,
			"https://sqs.us-east-1.amazonaws.com/123456789012/lwa-new-secret-dlq", true},
		{"moto", "http://127.0.0.1:5000/123456789012/q", `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:q-dlq","maxReceiveCount":5}`,
			"http://127.0.0.1:5000/123456789012/q-dlq", true},
		{"no redrive policy", "https://sqs.us-east-1.amazonaws.com/1/q", "", "", false},
		{"garbage", "https://sqs.us-east-1.amazonaws.com/1/q", "{", "", false},
	}
	for _, tc := range tests {
		got, ok := deadLetterURL(tc.queue, map[string]string{"RedrivePolicy": tc.policy})
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: deadLetterURL = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// The watcher says how old the depths are: a round that read every queue reports its time, a
// failed read is reported as such and leaves its queue's last depth standing, and a round that
// shutdown cut short reports nothing.
func TestDeadLetterWatcherReportsItsReads(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(epoch)
	f := fakesqs.New(clk)
	expiry, newSecret := f.CreateQueue("expiry-dlq", fakesqs.QueueOptions{}), f.CreateQueue("new-secret-dlq", fakesqs.QueueOptions{})
	ctx := context.Background()
	if _, err := f.Send(ctx, expiry, "a", fakesqs.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var failNewSecret, shutDown atomic.Bool
	f.SetFault(func(c fakesqs.Call) fakesqs.Fault {
		switch {
		case shutDown.Load():
			cancel() // the daemon stops while the read is on the wire
			return fakesqs.Fault{Err: context.Canceled}
		case failNewSecret.Load() && c.QueueURL == newSecret:
			return fakesqs.Fault{Err: errors.New("AccessDenied")}
		}
		return fakesqs.Fault{}
	})
	got := make(depths, 8)
	done := make(chan struct{})
	w := &DeadLetterWatcher{SQS: f, Queues: []DeadLetterQueue{{Label: "expiry", URL: expiry}, {Label: "new_secret", URL: newSecret}},
		Every: time.Minute, Clock: clk, Observer: got}
	go func() { w.Run(runCtx); close(done) }()

	rounds := []struct {
		name          string
		failNewSecret bool
		want          [][2]any
	}{
		{"every read succeeds", false, [][2]any{{"expiry", 1}, {"new_secret", 0}, {"read", epoch}}},
		{"one read fails", true, [][2]any{{"expiry", 1}, {"failed", "new_secret"}}},
		{"every read succeeds again", false, [][2]any{{"expiry", 1}, {"new_secret", 0}, {"read", epoch.Add(2 * time.Minute)}}},
	}
	for i, r := range rounds {
		failNewSecret.Store(r.failNewSecret)
		if i > 0 {
			clk.Advance(time.Minute)
		}
		wctx, wcancel := context.WithTimeout(ctx, guard)
		if err := clk.WaitCreated(wctx, i+1); err != nil {
			t.Fatalf("%s: the watcher did not wait for its next round: %v", r.name, err)
		}
		wcancel()
		var reported [][2]any
		for len(got) > 0 {
			reported = append(reported, <-got)
		}
		if !slices.Equal(reported, r.want) {
			t.Errorf("%s: reported %v, want %v", r.name, reported, r.want)
		}
	}

	shutDown.Store(true)
	clk.Advance(time.Minute)
	select {
	case <-done:
	case <-time.After(guard):
		t.Fatal("the watcher did not stop")
	}
	if len(got) != 0 {
		t.Errorf("a round cut short by shutdown reported %v, want nothing", <-got)
	}
}
