package rotator

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// A secret far from expiry: only the operator's request can make a rotation due.
const farFromExpiry = 150 * day

func requestCleared(st vault.RotationState) bool {
	return !RequestPending(st) && !RequestServed(st) && st.Request == (vault.RotationRequest{})
}

func TestOperatorRequestRotatesOnceAndIsCleared(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(farFromExpiry))
	ctx := context.Background()
	next := h.r.Tick(ctx)
	if h.amzn.calls() != 0 {
		t.Fatal("rotated with nothing due")
	}
	h.request(t0.Add(-time.Second))
	// Without the request watch, the request is read on the next planned pass.
	h.clk.Set(next)
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("the request did not rotate (calls %d)", h.amzn.calls())
	}
	st := h.world().state
	if !requestCleared(st) {
		t.Fatalf("the request is not cleared after the accepted call: %+v", st)
	}
	if st.RequestedAt.IsZero() {
		t.Fatalf("the rotation is not in flight: %+v", st)
	}
	next = h.clk.Now().Add(2 * time.Minute)
	h.clk.Set(next)
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("rotated %d times for one request", h.amzn.calls())
	}
	_, msg := h.delivered()
	if res := h.handle(msg); !res.Delete {
		t.Fatalf("new secret not accepted: %+v", res)
	}
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("rotated again after promotion (calls %d)", h.amzn.calls())
	}
	if w := h.world(); w.daemonTags != 0 {
		t.Fatalf("tags left after the requested rotation: %+v", w.state)
	}
}

// TestRequestSurvivesCrashesAndFailures walks the crash and failure points of a requested
// rotation: none may lose the request, and none may make a second rotate call.
func TestRequestSurvivesCrashesAndFailures(t *testing.T) {
	t.Parallel()
	t.Run("crash after the accepted call, before the tags are removed", func(t *testing.T) {
		t.Parallel()
		h := newHarnessWith(t, setup{expiry: t0.Add(farFromExpiry), state: vault.RotationState{Request: vault.RotationRequest{At: t0}}})
		ctx := context.Background()
		h.r.Tick(ctx)
		if h.amzn.calls() != 1 {
			t.Fatalf("calls %d", h.amzn.calls())
		}
		// Put the tags back as a crash before ClearRequest would have left them.
		h.request(t0)
		h.tag(types.Tag{Key: aws.String(vault.TagServedRequest), Value: aws.String(t0.Format(time.RFC3339Nano))})

		h.restart()
		h.clk.Advance(time.Minute)
		h.r.Tick(ctx)
		if h.amzn.calls() != 1 {
			t.Fatalf("a restart with the request served and the rotation in flight rotated again (calls %d)", h.amzn.calls())
		}
		_, msg := h.delivered()
		if res := h.handle(msg); !res.Delete {
			t.Fatalf("new secret not accepted: %+v", res)
		}
		if st := h.world().state; RequestPending(st) {
			t.Fatalf("promotion made the served request pending again: %+v", st)
		}
		h.r.Tick(ctx)
		if h.amzn.calls() != 1 {
			t.Fatalf("the served request rotated a second time (calls %d)", h.amzn.calls())
		}
		if st := h.world().state; !requestCleared(st) {
			t.Fatalf("the served request's tags were not removed: %+v", st)
		}
	})
	t.Run("crash after the intent save, before the call", func(t *testing.T) {
		t.Parallel()
		// What the intent save leaves: served and in flight in one write.
		h := newHarnessWith(t, setup{expiry: t0.Add(farFromExpiry), state: vault.RotationState{
			Request: vault.RotationRequest{At: t0}, ServedRequest: t0, RequestedAt: t0, LastCallAt: t0, RotationID: "r1"}})
		ctx := context.Background()
		h.clk.Advance(30 * time.Second)
		h.r.Tick(ctx)
		if h.amzn.calls() != 0 {
			t.Fatalf("rotated inside the await deadline of a saved intent (calls %d)", h.amzn.calls())
		}
		// The watchdog owns it now: after the deadline it asks again, once.
		h.clk.Advance(time.Hour)
		h.r.Tick(ctx)
		if h.obs.rotations(ResultTimeout) != 1 {
			t.Fatalf("no timeout counted: %+v", h.obs.rot)
		}
		h.clk.Set(h.world().state.NextAttemptAt)
		h.r.Tick(ctx)
		if h.amzn.calls() != 1 {
			t.Fatalf("the watchdog did not retry once (calls %d)", h.amzn.calls())
		}
	})
	t.Run("no call could be made: the request stays pending across a restart", func(t *testing.T) {
		t.Parallel()
		h := newHarnessWith(t, setup{expiry: t0.Add(farFromExpiry), state: vault.RotationState{Request: vault.RotationRequest{At: t0}}})
		ctx := context.Background()
		h.amzn.fail(nil, &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusBadRequest, Code: "InvalidInput",
			Message: "Application is not enrolled for rotation notification", Kind: spapi.ErrNotEnrolled}, false)
		h.r.Tick(ctx)
		st := h.world().state
		if !RequestPending(st) || !st.LastCallAt.IsZero() {
			t.Fatalf("a refused call consumed the request: %+v", st)
		}
		h.amzn.fail(nil, nil, false)
		h.restart() // the in-memory flags are gone; the vault remembers
		h.clk.Set(st.NextAttemptAt)
		h.r.Tick(ctx)
		if h.amzn.calls() != 1 {
			t.Fatalf("the pending request was not retried after the backoff (calls %d)", h.amzn.calls())
		}
		if st := h.world().state; !requestCleared(st) {
			t.Fatalf("the served request was not removed: %+v", st)
		}
	})
	t.Run("LWA refuses the current secret: no call, request kept", func(t *testing.T) {
		t.Parallel()
		h := newHarnessWith(t, setup{expiry: t0.Add(farFromExpiry), unknownToAmazon: true,
			state: vault.RotationState{Request: vault.RotationRequest{At: t0}}})
		h.r.Tick(context.Background())
		if st := h.world().state; !RequestPending(st) || st.Attempts != 1 || !st.LastCallAt.IsZero() {
			t.Fatalf("state after a failed token: %+v", st)
		}
		if _, rotates := h.amzn.counts(); rotates != 0 {
			t.Fatal("called rotate without a token")
		}
		if h.obs.rotations(ResultCurrentInvalid) != 1 {
			t.Fatalf("not counted as current_invalid: %+v", h.obs.rot)
		}
	})
}

// A request written while a rotation is in flight is shown, and waits for that rotation rather
// than making a second call.
func TestRequestWhileInFlightWaitsForTheRotation(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, setup{expiry: t0.Add(20 * day), requestPoll: time.Minute})
	ctx := h.running(t)
	// The first pass rotated; the scheduler's timer and the watch's first gap are armed.
	if err := h.clk.WaitCreated(ctx, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the scheduled rotation", func() bool { return h.amzn.calls() == 1 })
	h.request(t0.Add(time.Second))
	h.clk.Advance(time.Minute)
	waitFor(t, "the request to show in the status", func() bool { return h.status().RequestedAt.Equal(t0.Add(time.Second)) })
	if h.amzn.calls() != 1 {
		t.Fatalf("a request during a rotation made a second rotate call (calls %d)", h.amzn.calls())
	}
	if st := h.world().state; !RequestPending(st) {
		t.Fatalf("the request was consumed by the rotation already in flight: %+v", st)
	}
}

// TestRequestWatchFindsRequestsWithBoundedTraffic: one round of the watch finds a request with
// one listing (or, where listing is refused, one DescribeSecret per application), and the pass it
// wakes reads the application once more before serving it.
func TestRequestWatchFindsRequestsWithBoundedTraffic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                     string
		deny                     bool
		wantDescribe, wantListed int
	}{
		{"listing allowed", false, 1, 1},
		{"listing refused", true, 2, 1}, // the one refused ListSecrets, remembered after
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, setup{expiry: t0.Add(farFromExpiry), requestPoll: time.Minute})
			if tc.deny {
				f := refuseListing
				h.smFault.Store(&f)
			}
			ctx := h.running(t)
			// The scheduler's timer and the watch's first gap.
			if err := h.clk.WaitCreated(ctx, 2); err != nil {
				t.Fatal(err)
			}
			h.sm.ResetCalls()
			h.request(t0)
			h.clk.Advance(time.Minute)
			waitFor(t, "the request to be served and removed", func() bool {
				return h.amzn.calls() == 1 && h.sm.Count("UntagResource") == 1
			})
			if n := h.sm.Count(fakesm.OpDescribeSecret); n != tc.wantDescribe {
				t.Errorf("DescribeSecret calls for one request in one round = %d, want %d", n, tc.wantDescribe)
			}
			if n := h.sm.Count(fakesm.OpListSecrets); n != tc.wantListed {
				t.Errorf("ListSecrets calls for one request in one round = %d, want %d", n, tc.wantListed)
			}
		})
	}
}

func TestUnreadableRequestIsRemovedNotServed(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, setup{expiry: t0.Add(farFromExpiry), rawRequestAt: "tomorrow please"})
	h.r.Tick(context.Background())
	if _, rotates := h.amzn.counts(); rotates != 0 {
		t.Fatal("an unreadable request rotated")
	}
	if st := h.world().state; st.Request.Invalid || h.sm.Count("UntagResource") != 1 {
		t.Fatalf("the unreadable request was not removed: %+v", st)
	}
	if _, ok := h.sm.Tags(secretID)[vault.TagRequestAt]; ok {
		t.Fatal("the request-at tag is still there")
	}
}
