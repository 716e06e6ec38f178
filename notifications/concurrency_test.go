package notifications

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesqs"
)

// clientBody is the smallest body ClientIDOf routes: enough for grouping, not a notification.
func clientBody(client string, n int) string {
	return fmt.Sprintf(`{"payload":{"applicationOAuthClientSecretExpiry":{"clientId":%q}},"n":%d}`, client, n)
}

// clientMessage is one message of the tests below: the client id it routes by and its number.
type clientMessage struct {
	client string
	n      int
}

// sendClientMessages queues a clientBody for each of msgs, in order.
func sendClientMessages(t *testing.T, f *fakesqs.Fake, url string, msgs []clientMessage) {
	t.Helper()
	for _, o := range msgs {
		if _, err := f.Send(context.Background(), url, clientBody(o.client, o.n), fakesqs.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// parseClientBody reads a clientBody back.
func parseClientBody(t *testing.T, body []byte) (clientMessage, bool) {
	var m clientMessage
	if _, err := fmt.Sscanf(string(body), `{"payload":{"applicationOAuthClientSecretExpiry":{"clientId":%q}},"n":%d}`, &m.client, &m.n); err != nil {
		t.Errorf("body %s: %v", body, err)
		return m, false
	}
	return m, true
}

// TestConsumerHandlesApplicationsConcurrentlyInOrder: with Concurrency 2, one batch's messages
// for different clients run at the same time (A's first message waits until B's has started,
// which a one-at-a-time consumer would never let happen), never more than two at once, and each
// client's messages one at a time in the order received.
func TestConsumerHandlesApplicationsConcurrentlyInOrder(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(epoch)
	f := fakesqs.New(clk)
	url := f.CreateQueue(testQueue, fakesqs.QueueOptions{})
	order := []clientMessage{{"A", 1}, {"B", 1}, {"A", 2}, {"C", 1}, {"B", 2}, {"A", 3}}
	sendClientMessages(t, f, url, order)
	var (
		mu        sync.Mutex
		busy      = map[string]bool{}
		running   int
		most      int
		seen      = map[string][]int{}
		problems  []string
		bStarted  = make(chan struct{})
		bOnce     sync.Once
		overlapAB bool
	)
	h := HandlerFunc(func(_ context.Context, m Message) Result {
		cm, ok := parseClientBody(t, m.Body)
		if !ok {
			return Result{}
		}
		client, n := cm.client, cm.n
		mu.Lock()
		if busy[client] {
			problems = append(problems, "two messages of "+client+" at once")
		}
		busy[client] = true
		running++
		most = max(most, running)
		seen[client] = append(seen[client], n)
		mu.Unlock()
		if client == "B" {
			bOnce.Do(func() { close(bStarted) })
		}
		if client == "A" && n == 1 {
			select {
			case <-bStarted:
				overlapAB = true
			case <-time.After(guard):
			}
		}
		mu.Lock()
		busy[client] = false
		running--
		mu.Unlock()
		return Result{Delete: true}
	})
	c := &Consumer{SQS: f, QueueURL: url, Clock: clk, Handler: h, Concurrency: 2, WaitTime: 0}
	if n, err := c.Poll(context.Background()); err != nil || n != len(order) {
		t.Fatalf("Poll = %d, %v; want %d, nil", n, err, len(order))
	}
	if !overlapAB {
		t.Error("B's message did not start while A's first one was in hand: not concurrent")
	}
	if most > 2 {
		t.Errorf("%d messages in hand at once, want at most Concurrency (2)", most)
	}
	for _, p := range problems {
		t.Error(p)
	}
	want := map[string][]int{"A": {1, 2, 3}, "B": {1, 2}, "C": {1}}
	for client, ns := range want {
		if fmt.Sprint(seen[client]) != fmt.Sprint(ns) {
			t.Errorf("%s handled in order %v, want %v", client, seen[client], ns)
		}
	}
	if left := len(f.Messages(url)); left != 0 {
		t.Errorf("%d messages left, want all deleted", left)
	}
}

// TestConcurrentConsumerReleasesUnreachedMessagesOnShutdown: a shutdown during a concurrent
// batch lets the messages in hand finish and hands the others back at once.
func TestConcurrentConsumerReleasesUnreachedMessagesOnShutdown(t *testing.T) {
	t.Parallel()
	clk := fakeclock.New(epoch)
	f := fakesqs.New(clk)
	url := f.CreateQueue(testQueue, fakesqs.QueueOptions{VisibilityTimeout: time.Minute})
	for i, client := range []string{"A", "A", "A"} {
		if _, err := f.Send(context.Background(), url, clientBody(client, i+1), fakesqs.SendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := HandlerFunc(func(context.Context, Message) Result {
		cancel() // the stop signal arrives while the first message is in hand
		return Result{Delete: true}
	})
	c := &Consumer{SQS: f, QueueURL: url, Clock: clk, Handler: h, Concurrency: 4}
	if _, err := c.Poll(ctx); err != nil {
		t.Fatalf("Poll: %v", err)
	}
	msgs := f.Messages(url)
	if len(msgs) != 2 {
		t.Fatalf("%d messages left, want the 2 not reached", len(msgs))
	}
	for _, m := range msgs {
		if !m.Visible {
			t.Errorf("message %s not released (visible again at once)", m.Body)
		}
	}
}

// TestConsumerRunsThenAfterTheDelete: a handler's follow-up work runs once its message is gone
// from the queue, before the same client's next message is handled, one at a time or
// concurrently.
func TestConsumerRunsThenAfterTheDelete(t *testing.T) {
	t.Parallel()
	for _, concurrency := range []int{1, 3} {
		t.Run(fmt.Sprintf("concurrency %d", concurrency), func(t *testing.T) {
			t.Parallel()
			clk := fakeclock.New(epoch)
			f := fakesqs.New(clk)
			url := f.CreateQueue(testQueue, fakesqs.QueueOptions{})
			order := []clientMessage{{"A", 1}, {"B", 1}, {"A", 2}}
			sendClientMessages(t, f, url, order)
			var (
				mu     sync.Mutex
				events []string
			)
			note := func(s string) {
				mu.Lock()
				events = append(events, s)
				mu.Unlock()
			}
			stored := func(id string) bool {
				return slices.ContainsFunc(f.Messages(url), func(m fakesqs.MessageState) bool { return m.ID == id })
			}
			h := HandlerFunc(func(_ context.Context, m Message) Result {
				cm, ok := parseClientBody(t, m.Body)
				if !ok {
					return Result{}
				}
				name := fmt.Sprintf("%s%d", cm.client, cm.n)
				note("handle " + name)
				return Result{Delete: true, Then: func(context.Context) {
					if stored(m.ID) {
						t.Errorf("follow-up of %s ran while its message was still in the queue", name)
					}
					note("then " + name)
				}}
			})
			c := &Consumer{SQS: f, QueueURL: url, Clock: clk, Handler: h, Concurrency: concurrency, WaitTime: 0}
			if n, err := c.Poll(context.Background()); err != nil || n != len(order) {
				t.Fatalf("Poll = %d, %v; want %d, nil", n, err, len(order))
			}
			mu.Lock()
			defer mu.Unlock()
			at := func(s string) int { return slices.Index(events, s) }
			for _, name := range []string{"A1", "B1", "A2"} {
				if at("then "+name) < 0 || at("then "+name) < at("handle "+name) {
					t.Errorf("events %q: the follow-up of %s did not run after its handling", events, name)
				}
			}
			if at("then A1") > at("handle A2") {
				t.Errorf("events %q: A's second message was handled before the first one's follow-up", events)
			}
			if left := f.Messages(url); len(left) != 0 {
				t.Errorf("%d messages left in the queue, want 0", len(left))
			}
		})
	}
}

// TestConsumerTellsWhenABacklogIsDrained: Run calls Drained once when the queue empties after
// messages, not on every empty receive, and not when there was nothing to drain.
func TestConsumerTellsWhenABacklogIsDrained(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 3} {
		t.Run(fmt.Sprintf("%d messages", n), func(t *testing.T) {
			t.Parallel()
			clk := fakeclock.New(epoch)
			f := fakesqs.New(clk)
			url := f.CreateQueue(testQueue, fakesqs.QueueOptions{})
			var msgs []clientMessage
			for i := range n {
				msgs = append(msgs, clientMessage{"A", i})
			}
			sendClientMessages(t, f, url, msgs)
			var drained atomic.Int32
			c := &Consumer{SQS: f, QueueURL: url, Clock: clk, MaxMessages: 1,
				Handler: HandlerFunc(func(context.Context, Message) Result { return Result{Delete: true} }),
				Drained: func() { drained.Add(1) }}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			// n receives with a message each, then at least three empty long polls, ended by
			// moving the clock past the wait (a move before a poll waits is harmless: the next
			// one ends it).
			deadline := time.Now().Add(guard)
			for f.Count(fakesqs.OpReceiveMessage) < n+4 {
				if time.Now().After(deadline) {
					t.Fatalf("only %d receives", f.Count(fakesqs.OpReceiveMessage))
				}
				clk.Advance(21 * time.Second)
				wctx, stop := context.WithTimeout(ctx, 50*time.Millisecond)
				_ = f.WaitCount(wctx, fakesqs.OpReceiveMessage, f.Count(fakesqs.OpReceiveMessage)+1)
				stop()
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			want := int32(0)
			if n > 0 {
				want = 1
			}
			if got := drained.Load(); got != want {
				t.Errorf("Drained called %d times, want %d", got, want)
			}
			if left := f.Messages(url); len(left) != 0 {
				t.Errorf("%d messages left", len(left))
			}
		})
	}
}
