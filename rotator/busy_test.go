package rotator

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
)

// A reload (SIGHUP), a SIGUSR1 and a metrics scrape arrive while an application is blocked in a
// call made under its work lock: none of them waits for it, a pass in the meantime skips the busy
// application, and a later pass handles it.
func TestSignalsAndReloadsNeverWaitForABusyApplication(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		expiry time.Time
		// block makes the application's next call of its kind wait for release, after closing
		// entered; start begins the work that makes that call.
		block func(h *harness, entered, release chan struct{})
		start func(h *harness) func()
		// After the later pass: accepted rotate calls and the phase.
		wantCalls int
		wantPhase Phase
	}{
		{
			name:   "verifying a new secret from a message",
			expiry: t0.Add(20 * day),
			block: func(h *harness, entered, release chan struct{}) {
				h.r.Tick(context.Background()) // the rotate call whose secret the message brings
				h.amzn.mu.Lock()
				h.amzn.beforeToken = func() { close(entered); <-release }
				h.amzn.mu.Unlock()
			},
			start: func(h *harness) func() {
				_, msg := h.delivered()
				return func() { h.mustDelete(msg) }
			},
			// The SIGUSR1 that came while the rotation finished is answered by it.
			wantCalls: 1, wantPhase: PhaseIdle,
		},
		{
			name:   "minting the token for the rotate call",
			expiry: t0.Add(20 * day),
			block: func(h *harness, entered, release chan struct{}) {
				h.amzn.mu.Lock()
				h.amzn.beforeToken = func() { close(entered); <-release }
				h.amzn.mu.Unlock()
			},
			start:     func(h *harness) func() { return func() { h.r.Tick(context.Background()) } },
			wantCalls: 1, wantPhase: PhaseRequested, // the trigger does not make a second call
		},
		{
			name:   "reading the vault with nothing due",
			expiry: t0.Add(150 * day),
			block: func(h *harness, entered, release chan struct{}) {
				var once sync.Once
				f := func(op, _ string) fakesm.Fault {
					if op == fakesm.OpDescribeSecret {
						once.Do(func() { close(entered); <-release })
					}
					return fakesm.Fault{}
				}
				h.smFault.Store(&f)
			},
			start: func(h *harness) func() { return func() { h.r.Tick(context.Background()) } },
			// The trigger's rotation follows once the read returns; the later pass finds it in flight.
			wantCalls: 1, wantPhase: PhaseRequested,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tc.expiry)
			entered, release := make(chan struct{}), make(chan struct{})
			tc.block(h, entered, release)
			work := tc.start(h)
			busyDone := make(chan struct{})
			go func() { defer close(busyDone); work() }()
			defer func() {
				select {
				case <-release:
				default:
					close(release)
				}
				<-busyDone
			}()
			select {
			case <-entered:
			case <-time.After(10 * time.Second):
				t.Fatal("the application never became busy")
			}
			describes := h.sm.Count(fakesm.OpDescribeSecret)
			tokens, rotates := h.amzn.counts()

			returnsWithin(t, "Reconfigure", func() {
				app := App{Name: "renamed", ClientID: clientID, Region: "na", SecretID: secretID, ApplicationID: appID}
				if err := h.r.Reconfigure([]App{app}, testSettings); err != nil {
					t.Errorf("Reconfigure: %v", err)
				}
			})
			returnsWithin(t, "Trigger", func() {
				if !h.r.Trigger("") {
					t.Error("Trigger matched no application")
				}
			})
			returnsWithin(t, "Snapshot", func() {
				if s := h.r.Snapshot(); len(s) != 1 || s[0].App != "renamed" {
					t.Errorf("snapshot while busy = %+v, want the renamed application", s)
				}
			})
			returnsWithin(t, "Tick", func() { h.r.Tick(context.Background()) })
			if n := h.sm.Count(fakesm.OpDescribeSecret); n != describes {
				t.Fatalf("a pass read the busy application's secret (%d reads)", n-describes)
			}
			if tk, rt := h.amzn.counts(); tk != tokens || rt != rotates {
				t.Fatalf("a pass called Amazon for the busy application (%d tokens, %d rotates)", tk-tokens, rt-rotates)
			}

			close(release)
			select {
			case <-busyDone:
			case <-time.After(10 * time.Second):
				t.Fatal("the busy work never finished once released")
			}
			h.r.Tick(context.Background())
			if n := h.sm.Count(fakesm.OpDescribeSecret); n <= describes {
				t.Fatal("the later pass did not handle the application")
			}
			if got := h.amzn.calls(); got != tc.wantCalls {
				t.Fatalf("accepted rotate calls = %d, want %d", got, tc.wantCalls)
			}
			if s := h.status(); s.Phase != tc.wantPhase || s.App != "renamed" {
				t.Fatalf("status after the later pass = %+v, want phase %v for the renamed application", s, tc.wantPhase)
			}
		})
	}
}
