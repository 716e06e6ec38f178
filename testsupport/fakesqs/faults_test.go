package fakesqs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesqs"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	tests := []struct {
		name        string
		after       bool
		wantDeleted bool
	}{
		{"before the effect", false, false},
		{"after the effect (ambiguous)", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := fakesqs.New(fakeclock.New(epoch))
			url := f.CreateQueue("q", fakesqs.QueueOptions{})
			if _, err := f.Send(context.Background(), url, "a", fakesqs.SendOptions{}); err != nil {
				t.Fatal(err)
			}
			out, err := f.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
			if err != nil || len(out.Messages) != 1 {
				t.Fatalf("ReceiveMessage = %v, %v", out, err)
			}
			var seen []fakesqs.Call
			f.SetFault(func(c fakesqs.Call) fakesqs.Fault {
				seen = append(seen, c)
				// The hook runs without the fake's lock: calling back in must not deadlock.
				_ = f.Messages(url)
				if c.Op == fakesqs.OpDeleteMessage {
					return fakesqs.Fault{Err: boom, AfterEffect: tc.after}
				}
				return fakesqs.Fault{}
			})
			_, err = f.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: out.Messages[0].ReceiptHandle})
			if !errors.Is(err, boom) {
				t.Errorf("DeleteMessage = %v, want the injected error", err)
			}
			if deleted := len(f.Messages(url)) == 0; deleted != tc.wantDeleted {
				t.Errorf("deleted = %v, want %v", deleted, tc.wantDeleted)
			}
			if len(seen) != 1 || seen[0].MessageID != aws.ToString(out.Messages[0].MessageId) || seen[0].QueueURL != url {
				t.Errorf("hook saw %+v, want the delete naming the message", seen)
			}
			if got := f.Count(fakesqs.OpDeleteMessage); got != 1 {
				t.Errorf("Count(DeleteMessage) = %d, want 1", got)
			}
		})
	}
}

func TestInspection(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(epoch)
	f := fakesqs.New(clk)
	dlq := f.CreateQueue("dlq", fakesqs.QueueOptions{})
	url := f.CreateQueue("q", fakesqs.QueueOptions{MaxReceiveCount: 1, DeadLetter: "dlq"})
	ctx := context.Background()
	idA, _ := f.Send(ctx, url, "a", fakesqs.SendOptions{SenderID: "AIDAAMAZON"})
	idB, _ := f.Send(ctx, url, "b", fakesqs.SendOptions{})
	out, err := f.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 1, VisibilityTimeout: 30})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("ReceiveMessage = %v, %v", out, err)
	}
	got := f.Messages(url)
	if len(got) != 2 || got[0].ID != idA || got[0].SenderID != "AIDAAMAZON" || got[0].ReceiveCount != 1 || got[0].Visible ||
		!got[0].VisibleAt.Equal(epoch.Add(30*time.Second)) || got[0].ReceiptHandle != aws.ToString(out.Messages[0].ReceiptHandle) ||
		got[1].ID != idB || got[1].SenderID != fakesqs.DefaultSenderID || !got[1].Visible || got[1].ReceiveCount != 0 {
		t.Fatalf("Messages = %+v", got)
	}
	got[0].Body = "changed"
	if f.Messages(url)[0].Body != "a" {
		t.Error("Messages returned the stored message, not a copy")
	}
	clk.Advance(30 * time.Second)
	if _, err := f.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10}); err != nil {
		t.Fatal(err)
	}
	if d := f.DeadLetters(url); len(d) != 1 || d[0].ID != idA || d[0].Body != "a" || !d[0].Visible {
		t.Errorf("DeadLetters = %+v, want message a", d)
	}
	if d := f.Messages(dlq); len(d) != 1 {
		t.Errorf("the dead-letter queue holds %d messages, want 1", len(d))
	}
	if got := f.Count(fakesqs.OpReceiveMessage); got != 2 {
		t.Errorf("Count(ReceiveMessage) = %d, want 2", got)
	}
}

// TestConcurrentReceiversNeverShareAMessage runs under -race: every message goes to exactly one
// of many receivers while its visibility lasts.
func TestConcurrentReceiversNeverShareAMessage(t *testing.T) {
	t.Parallel()
	f := fakesqs.New(fakeclock.New(epoch))
	url := f.CreateQueue("q", fakesqs.QueueOptions{})
	const n = 200
	for range n {
		if _, err := f.Send(context.Background(), url, "m", fakesqs.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				out, err := f.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 3, VisibilityTimeout: 60})
				if err != nil || len(out.Messages) == 0 {
					return
				}
				mu.Lock()
				for _, m := range out.Messages {
					seen[aws.ToString(m.MessageId)]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d distinct messages received, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("message %s received %d times while invisible", id, c)
		}
	}
}

func TestWaitCount(t *testing.T) {
	t.Parallel()
	f := fakesqs.New(fakeclock.New(epoch))
	url := f.CreateQueue("q", fakesqs.QueueOptions{})
	go func() {
		for range 3 {
			_, _ = f.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url)})
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := f.WaitCount(ctx, fakesqs.OpGetQueueAttributes, 3); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithCancel(context.Background())
	cancelShort()
	if err := f.WaitCount(short, fakesqs.OpGetQueueAttributes, 4); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitCount past the calls made = %v, want the context's error", err)
	}
	if calls := f.Calls(); len(calls) != 3 || calls[0].Op != fakesqs.OpGetQueueAttributes || calls[0].QueueURL != url {
		t.Errorf("Calls = %+v", calls)
	}
}
