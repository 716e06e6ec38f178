package rotator

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// A secret far from expiry: only the operator's request can make a rotation due.
const farFromExpiry = 150 * 24 * time.Hour

func TestOperatorRequestRotatesOnceAndIsCleared(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(farFromExpiry))
	ctx := context.Background()
	h.r.Tick(ctx)
	if h.amzn.calls() != 0 {
		t.Fatal("rotated with nothing due")
	}
	h.vault.request(t0.Add(-time.Second))
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("the request did not rotate (calls %d)", h.amzn.calls())
	}
	_, _, _, st := h.vault.snapshot()
	if st.RequestPending() || st.RequestServed() || st.Request != (vault.RotationRequest{}) {
		t.Fatalf("the request is not cleared after the accepted call: %+v", st)
	}
	if st.RequestedAt.IsZero() {
		t.Fatalf("the rotation is not in flight: %+v", st)
	}
	h.clk.Advance(2 * time.Minute)
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("rotated %d times for one request", h.amzn.calls())
	}
	_, msg := h.mint("n1", t0.Add(180*24*time.Hour), t0.Add(7*24*time.Hour))
	if res := h.r.Handle(ctx, msg); !res.Delete {
		t.Fatalf("new secret not accepted: %+v", res)
	}
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("rotated again after promotion (calls %d)", h.amzn.calls())
	}
}

// TestRequestSurvivesCrashesAndFailures walks the crash and failure points of a requested
// rotation: none may lose the request, and none may make a second rotate call.
func TestRequestSurvivesCrashesAndFailures(t *testing.T) {
	t.Parallel()
	t.Run("crash after the accepted call, before the tags are removed", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, t0.Add(farFromExpiry))
		ctx := context.Background()
		h.vault.request(t0)
		h.r.Tick(ctx)
		if h.amzn.calls() != 1 {
			t.Fatalf("calls %d", h.amzn.calls())
		}
		// Put the tags back as a crash before ClearRequest would have left them.
		h.vault.mu.Lock()
		h.vault.state.Request = vault.RotationRequest{At: t0}
		h.vault.state.ServedRequest = t0
		h.vault.mu.Unlock()

		h.r = h.newRotator(zap.NewNop()) // restart
		h.clk.Advance(time.Minute)
		h.r.Tick(ctx)
		if h.amzn.calls() != 1 {
			t.Fatalf("a restart with the request served and the rotation in flight rotated again (calls %d)", h.amzn.calls())
		}
		_, msg := h.mint("n1", t0.Add(180*24*time.Hour), t0.Add(7*24*time.Hour))
		if res := h.r.Handle(ctx, msg); !res.Delete {
			t.Fatalf("new secret not accepted: %+v", res)
		}
		if _, _, _, st := h.vault.snapshot(); st.RequestPending() {
			t.Fatalf("promotion made the served request pending again: %+v", st)
		}
		h.r.Tick(ctx)
		if h.amzn.calls() != 1 {
			t.Fatalf("the served request rotated a second time (calls %d)", h.amzn.calls())
		}
		if _, _, _, st := h.vault.snapshot(); st.RequestServed() || st.Request != (vault.RotationRequest{}) {
			t.Fatalf("the served request's tags were not removed: %+v", st)
		}
	})
	t.Run("crash after the intent save, before the call", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, t0.Add(farFromExpiry))
		ctx := context.Background()
		h.vault.request(t0)
		// What the intent save leaves: served and in flight in one write.
		h.vault.mu.Lock()
		h.vault.state.ServedRequest, h.vault.state.RequestedAt, h.vault.state.LastCallAt = t0, t0, t0
		h.vault.mu.Unlock()
		h.clk.Advance(30 * time.Second)
		h.r.Tick(ctx)
		if h.amzn.calls() != 0 {
			t.Fatalf("rotated inside the await deadline of a saved intent (calls %d)", h.amzn.calls())
		}
		// The watchdog owns it now: after the deadline it asks again, once.
		h.clk.Advance(time.Hour)
		h.r.Tick(ctx)
		_, _, _, st := h.vault.snapshot()
		h.clk.Set(st.NextAttemptAt)
		h.r.Tick(ctx)
		if h.amzn.calls() != 1 {
			t.Fatalf("the watchdog did not retry once (calls %d)", h.amzn.calls())
		}
	})
	t.Run("no call could be made: the request stays pending across a restart", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, t0.Add(farFromExpiry))
		ctx := context.Background()
		h.vault.request(t0)
		h.amzn.rotateErr = &spapi.Error{API: "spapi", Op: "rotate", StatusCode: 400, Kind: spapi.ErrNotEnrolled}
		h.r.Tick(ctx)
		_, _, _, st := h.vault.snapshot()
		if !st.RequestPending() || !st.LastCallAt.IsZero() {
			t.Fatalf("a refused call consumed the request: %+v", st)
		}
		h.amzn.mu.Lock()
		h.amzn.rotateErr = nil
		h.amzn.mu.Unlock()
		h.r = h.newRotator(zap.NewNop()) // the in-memory manual flag is gone; the vault remembers
		h.clk.Set(st.NextAttemptAt)
		h.r.Tick(ctx)
		if h.amzn.calls() != 1 {
			t.Fatalf("the pending request was not retried after the backoff (calls %d)", h.amzn.calls())
		}
	})
	t.Run("LWA refuses the current secret: no call, request kept", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, t0.Add(farFromExpiry))
		ctx := context.Background()
		h.vault.request(t0)
		h.amzn.tokenErr = errors.Join(spapi.ErrInvalidClient)
		h.r.Tick(ctx)
		if _, _, _, st := h.vault.snapshot(); !st.RequestPending() || st.Attempts != 1 {
			t.Fatalf("state after a failed token: %+v", st)
		}
		if h.amzn.calls() != 0 {
			t.Fatal("called rotate without a token")
		}
	})
}

func TestRequestWhileInFlightWaitsForTheRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	ctx := context.Background()
	h.r.Tick(ctx) // a scheduled rotation is in flight
	h.vault.request(t0.Add(time.Second))
	h.clk.Advance(time.Minute)
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("a request during a rotation made a second rotate call (calls %d)", h.amzn.calls())
	}
	if s := h.r.Snapshot()[0]; !s.RequestedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("status does not show the pending request: %+v", s)
	}
}

func TestRequestWatchFindsRequestsWithBoundedTraffic(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(farFromExpiry))
	h.r = New(Options{
		Apps:  []App{{Name: "app", ClientID: clientID, Region: spapi.Region("na"), SecretID: "secret"}},
		Vault: h.vault, LWA: h.amzn, SPAPI: h.amzn, Clock: h.clk, Log: zap.NewNop(), Observer: h.obs,
		RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, Rand: func() float64 { return 0.5 },
		RequestPoll: time.Minute,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	// The scheduler's timer and the watch's first gap.
	if err := h.clk.WaitCreated(ctx, 2); err != nil {
		t.Fatal(err)
	}
	loads := h.vault.count("LoadState")
	h.vault.request(t0)
	h.clk.Advance(time.Minute)
	waitFor(t, "the request to be served", func() bool { return h.amzn.calls() == 1 })
	// One round of the watch read the application once; the tick it woke read it once more.
	if n := h.vault.count("LoadState") - loads; n != 2 {
		t.Errorf("LoadState calls for one request in one round = %d, want 2 (watch + tick)", n)
	}
}

// waitFor polls cond with a bound: the state a goroutine reaches, not a sleep.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestUnreadableRequestIsRemovedNotServed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(farFromExpiry))
	h.vault.mu.Lock()
	h.vault.state.Request = vault.RotationRequest{Invalid: true}
	h.vault.mu.Unlock()
	h.r.Tick(context.Background())
	if h.amzn.calls() != 0 {
		t.Fatal("an unreadable request rotated")
	}
	if _, _, _, st := h.vault.snapshot(); st.Request.Invalid || h.vault.count("ClearRequest") != 1 {
		t.Fatalf("the unreadable request was not removed: %+v", st)
	}
}
