package fakesqs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesqs"
)

// guard bounds every wait; reaching it is a failure, never the normal path.
const guard = 10 * time.Second

type received struct {
	msgs []types.Message
	err  error
}

// longPoll starts a 20-second receive in the background.
func longPoll(ctx context.Context, f *fakesqs.Fake, url string) chan received {
	done := make(chan received, 1)
	go func() {
		out, err := f.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20, VisibilityTimeout: 60})
		r := received{err: err}
		if out != nil {
			r.msgs = out.Messages
		}
		done <- r
	}()
	return done
}

func await(t *testing.T, done chan received) received {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(guard):
		t.Fatal("long poll did not return")
		return received{}
	}
}

// waitingOn returns once the long poll armed its n-th timer, so the test moves time only then.
func waitingOn(t *testing.T, clk *fakeclock.Fake, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := clk.WaitCreated(ctx, n); err != nil {
		t.Fatalf("long poll never waited: %v", err)
	}
}

func TestLongPoll(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// act runs while the poll waits on its first timer; it returns the messages expected.
		act       func(clk *fakeclock.Fake, f *fakesqs.Fake, url string, cancel context.CancelFunc) int
		wantErr   error
		setup     func(clk *fakeclock.Fake, f *fakesqs.Fake, url string)
		immediate bool
	}{
		{name: "a send wakes it", act: func(_ *fakeclock.Fake, f *fakesqs.Fake, url string, _ context.CancelFunc) int {
			if _, err := f.Send(context.Background(), url, "a", fakesqs.SendOptions{}); err != nil {
				panic(err)
			}
			return 1
		}},
		{name: "the wait elapses on the clock", act: func(clk *fakeclock.Fake, _ *fakesqs.Fake, _ string, _ context.CancelFunc) int {
			clk.Advance(20 * time.Second)
			return 0
		}},
		{name: "ctx ends it", wantErr: context.Canceled, act: func(_ *fakeclock.Fake, _ *fakesqs.Fake, _ string, cancel context.CancelFunc) int {
			cancel()
			return 0
		}},
		{name: "an in-flight message coming back wakes it",
			setup: func(clk *fakeclock.Fake, f *fakesqs.Fake, url string) {
				if _, err := f.Send(context.Background(), url, "a", fakesqs.SendOptions{}); err != nil {
					panic(err)
				}
				if _, err := f.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), VisibilityTimeout: 5}); err != nil {
					panic(err)
				}
			},
			act: func(clk *fakeclock.Fake, _ *fakesqs.Fake, _ string, _ context.CancelFunc) int {
				clk.Advance(5 * time.Second)
				return 1
			}},
		{name: "a receivable message returns at once", immediate: true,
			setup: func(_ *fakeclock.Fake, f *fakesqs.Fake, url string) {
				if _, err := f.Send(context.Background(), url, "a", fakesqs.SendOptions{}); err != nil {
					panic(err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := fakeclock.New(epoch)
			f := fakesqs.New(clk)
			url := f.CreateQueue("q", fakesqs.QueueOptions{})
			if tc.setup != nil {
				tc.setup(clk, f, url)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := longPoll(ctx, f, url)
			want := 1
			if !tc.immediate {
				waitingOn(t, clk, 1)
				want = tc.act(clk, f, url, cancel)
			}
			r := await(t, done)
			if !errors.Is(r.err, tc.wantErr) || len(r.msgs) != want {
				t.Errorf("long poll = %d messages, %v; want %d, %v", len(r.msgs), r.err, want, tc.wantErr)
			}
			if tc.immediate && clk.Created() != 0 {
				t.Errorf("a receive with a message waiting armed %d timers", clk.Created())
			}
		})
	}
}

func TestLongPollWaitsOutAFutureVisibilityPastTheWait(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(epoch)
	f := fakesqs.New(clk)
	url := f.CreateQueue("q", fakesqs.QueueOptions{})
	if _, err := f.Send(context.Background(), url, "a", fakesqs.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), VisibilityTimeout: 60}); err != nil {
		t.Fatal(err)
	}
	done := longPoll(context.Background(), f, url)
	waitingOn(t, clk, 1)
	clk.Advance(20 * time.Second)
	if r := await(t, done); r.err != nil || len(r.msgs) != 0 {
		t.Errorf("long poll = %d messages, %v; want none after the 20 s wait", len(r.msgs), r.err)
	}
}
