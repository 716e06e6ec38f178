package rotator

import (
	"context"
	"testing"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
)

// TestPromotionBookkeepingFollowsTheDelete: a new-secret message is answered (deleted) as soon as
// AWSCURRENT has moved; the tag call that clears the rotation's bookkeeping is the message's
// follow-up work. Whether the follow-up runs, or a pass plans on a fresh read first, the
// bookkeeping ends cleared, with one tag call in all.
func TestPromotionBookkeepingFollowsTheDelete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// between runs after the message was answered and before its follow-up.
		between func(h *harness)
	}{
		{"the follow-up runs next", func(*harness) {}},
		{"a pass runs before the follow-up", func(h *harness) {
			h.r.reg.Load().order[0].dirty.Store(true) // as a timer or a poke would make it due
			h.r.Tick(context.Background())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, t0.Add(20*day))
			h.r.Tick(context.Background()) // due: the rotate call
			v, msg := h.delivered()
			before := h.world()
			if before.state.RequestedAt.IsZero() {
				t.Fatal("no rotation in flight before the new secret arrived")
			}
			h.sm.ResetCalls()
			res := h.d.Handle(context.Background(), msg)
			if !res.Delete || res.Then == nil {
				t.Fatalf("Handle = delete %v, follow-up %v; want a delete with follow-up work", res.Delete, res.Then != nil)
			}
			w := h.world()
			if !w.cur.Record.ClientSecret.Equal(v) {
				t.Fatal("AWSCURRENT did not move before the message was answered")
			}
			if w.state.RequestedAt.IsZero() {
				t.Error("the bookkeeping was cleared before the message was answered; it should wait for the delete")
			}
			if n := h.sm.Count(fakesm.OpTagResource) + h.sm.Count(fakesm.OpUntagResource); n != 0 {
				t.Errorf("%d tag calls before the message was answered, want 0", n)
			}
			tc.between(h)
			res.Then(context.Background())
			w = h.world()
			if !w.state.RequestedAt.IsZero() || !w.state.LastCallAt.IsZero() && w.state.Attempts != 0 {
				t.Errorf("rotation state after the follow-up = %+v, want cleared", w.state)
			}
			if n := h.sm.Count(fakesm.OpTagResource) + h.sm.Count(fakesm.OpUntagResource); n != 1 {
				t.Errorf("%d tag calls for the bookkeeping, want 1", n)
			}
			if s := h.status(); s.Phase != PhaseIdle || !s.InFlightSince.IsZero() {
				t.Errorf("status phase %v, in flight since %v; want idle", s.Phase, s.InFlightSince)
			}
			if n := h.obs.rotations(ResultSuccess); n != 1 {
				t.Errorf("%d successes counted, want 1", n)
			}
			if o := h.obs.notes[notifications.OutcomeProcessed]; o != 1 {
				t.Errorf("%d messages counted processed, want 1", o)
			}
		})
	}
}
