package notifications

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
)

// failing answers a scripted outcome per try.
type failing struct{ outcomes []Outcome }

func (f *failing) Receive(context.Context, Notification, Message) Handled {
	o := f.outcomes[0]
	if len(f.outcomes) > 1 {
		f.outcomes = f.outcomes[1:]
	}
	return Handled{App: "app", Outcome: o}
}

type receiverFunc func(ctx context.Context, n Notification, m Message) Handled

func (f receiverFunc) Receive(ctx context.Context, n Notification, m Message) Handled {
	return f(ctx, n, m)
}

// The Dispatcher is the one place a message is retried: it holds a message whose work failed,
// waits a growing backoff, and tries again while the message may be held.
func TestDispatcherHoldsAFailedMessage(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("testdata/new_secret.json")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		outcomes  []Outcome
		holdUntil time.Duration // from start; 0: the message may not be held
		stopAfter int           // Wait reports a stopped consumer after this many waits; -1: never
		wantTries int
		wantWaits []time.Duration
		wantDel   bool
	}{
		{"done at once", []Outcome{OutcomeProcessed}, time.Hour, -1, 1, nil, true},
		{"fails twice, then done", []Outcome{OutcomeFailed, OutcomeFailed, OutcomeStaged}, time.Hour, -1, 3,
			[]time.Duration{5 * time.Second, 10 * time.Second}, true},
		{"not held without a hold time", []Outcome{OutcomeFailed, OutcomeProcessed}, 0, -1, 1, nil, false},
		{"never waits past the hold time", []Outcome{OutcomeFailed}, 20 * time.Second, -1, 3,
			[]time.Duration{5 * time.Second, 10 * time.Second}, false},
		{"stops waiting when the consumer stops", []Outcome{OutcomeFailed, OutcomeProcessed}, time.Hour, 0, 1,
			[]time.Duration{5 * time.Second}, false},
		{"a refused message is not held", []Outcome{OutcomeRejected, OutcomeProcessed}, time.Hour, -1, 1, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := fakeclock.New(start)
			rec := &failing{outcomes: tc.outcomes}
			tries := 0
			counting := receiverFunc(func(ctx context.Context, n Notification, m Message) Handled {
				tries++
				return rec.Receive(ctx, n, m)
			})
			var waits []time.Duration
			d := &Dispatcher{Receiver: counting, RejectedRetry: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
				Rand: func() float64 { return 0.999999 }, Clock: clk,
				Wait: func(_ context.Context, _ Message, w time.Duration) bool {
					waits = append(waits, w.Round(time.Second))
					if tc.stopAfter >= 0 && len(waits) > tc.stopAfter {
						return false
					}
					clk.Advance(w)
					return true
				}}
			m := Message{ID: "m", Body: body, ReceiveCount: 1}
			if tc.holdUntil > 0 {
				m.HoldUntil = start.Add(tc.holdUntil)
			}
			res := d.Handle(context.Background(), m)
			if tries != tc.wantTries || res.Delete != tc.wantDel || len(waits) != len(tc.wantWaits) {
				t.Fatalf("tries %d, delete %v, waits %v; want %d, %v, %v", tries, res.Delete, waits, tc.wantTries, tc.wantDel, tc.wantWaits)
			}
			for i := range waits {
				if waits[i] != tc.wantWaits[i] {
					t.Errorf("wait %d = %v, want %v", i, waits[i], tc.wantWaits[i])
				}
			}
		})
	}
}
