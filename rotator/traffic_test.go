package rotator

import (
	"context"
	"maps"
	"testing"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// Issue 11's request-count targets, measured on the fake Secrets Manager: each step's calls are
// counted from a reset, after whatever set the step up (including the first read that fills the
// store's version cache).
func TestRequestCountsPerStep(t *testing.T) {
	t.Parallel()
	type counts = map[string]int
	tests := []struct {
		name  string
		setup setup
		// prepare runs before the counters are reset; step is what is measured.
		prepare func(h *harness)
		step    func(h *harness)
		want    counts
		// wantTokens is the number of LWA token calls the step makes.
		wantTokens int
		check      func(t *testing.T, h *harness)
	}{
		{
			name:    "a scheduler pass that decides nothing",
			setup:   setup{expiry: t0.Add(100 * day)},
			prepare: func(h *harness) { h.clk.Set(h.r.Tick(context.Background())) },
			step:    func(h *harness) { h.r.Tick(context.Background()) },
			want:    counts{fakesm.OpDescribeSecret: 1},
			check: func(t *testing.T, h *harness) {
				if s := h.status(); s.Phase != PhaseIdle {
					t.Errorf("phase %v, want idle", s.Phase)
				}
			},
		},
		{
			name:    "the first pass of a process reads the current version once",
			setup:   setup{expiry: t0.Add(100 * day)},
			prepare: func(*harness) {},
			step:    func(h *harness) { h.r.Tick(context.Background()) },
			want:    counts{fakesm.OpDescribeSecret: 1, fakesm.OpGetSecretValue: 1},
		},
		{
			name:  "a pass after a promotion: the promoted version is already known",
			setup: setup{expiry: t0.Add(20 * day)},
			prepare: func(h *harness) {
				h.r.Tick(context.Background())
				_, msg := h.delivered()
				h.mustDelete(msg)
				h.clk.Set(h.r.Tick(context.Background()))
			},
			step: func(h *harness) { h.r.Tick(context.Background()) },
			want: counts{fakesm.OpDescribeSecret: 1},
			check: func(t *testing.T, h *harness) {
				if s := h.status(); s.Phase != PhaseIdle {
					t.Errorf("phase %v, want idle", s.Phase)
				}
			},
		},
		{
			name:    "an expiry notice that records a new expiry",
			setup:   setup{expiry: t0.Add(100 * day)},
			prepare: func(h *harness) { h.r.Tick(context.Background()) },
			step:    func(h *harness) { h.mustDelete(h.expiry("e1", clientID, appID, t0.Add(90*day))) },
			want:    counts{fakesm.OpDescribeSecret: 1, fakesm.OpTagResource: 1},
			check: func(t *testing.T, h *harness) {
				if st := h.world().state; !st.NoticedExpiry.Equal(t0.Add(90 * day)) {
					t.Errorf("noticed expiry %v", st.NoticedExpiry)
				}
			},
		},
		{
			name:  "an expiry notice already recorded",
			setup: setup{expiry: t0.Add(100 * day), state: vault.RotationState{NoticedExpiry: t0.Add(90 * day)}},
			prepare: func(h *harness) {
				h.r.Tick(context.Background())
			},
			step: func(h *harness) { h.mustDelete(h.expiry("e1", clientID, appID, t0.Add(90*day))) },
			want: counts{fakesm.OpDescribeSecret: 1},
		},
		{
			name:    "an expiry notice of the stored expiry (Amazon's routine notice) writes nothing",
			setup:   setup{expiry: t0.Add(100 * day)},
			prepare: func(h *harness) { h.r.Tick(context.Background()) },
			step:    func(h *harness) { h.mustDelete(h.expiry("e1", clientID, appID, t0.Add(100*day))) },
			want:    counts{fakesm.OpDescribeSecret: 1},
			check: func(t *testing.T, h *harness) {
				if st := h.world().state; !st.NoticedExpiry.IsZero() {
					t.Errorf("noticed expiry %v recorded, want none", st.NoticedExpiry)
				}
			},
		},
		{
			name:    "a new-secret message that is promoted",
			setup:   setup{expiry: t0.Add(20 * day)},
			prepare: func(h *harness) { h.r.Tick(context.Background()) }, // the rotate call; current version read
			step: func(h *harness) {
				_, msg := h.delivered()
				h.mustDelete(msg)
			},
			want: counts{fakesm.OpDescribeSecret: 1, fakesm.OpPutSecretValue: 1, fakesm.OpUpdateSecretVersionStage: 1,
				fakesm.OpUntagResource: 1},
			wantTokens: 1,
			check:      promotedAndCleared,
		},
		{
			name:    "a rotation started by SIGUSR1, then delivered",
			setup:   setup{expiry: t0.Add(100 * day)},
			prepare: func(h *harness) { h.clk.Set(h.r.Tick(context.Background())) },
			step: func(h *harness) {
				h.r.Trigger("app")
				h.r.Tick(context.Background())
				_, msg := h.delivered()
				h.mustDelete(msg)
			},
			// Two puts: the claim on the due rotation, then the new secret.
			want: counts{fakesm.OpDescribeSecret: 2, fakesm.OpTagResource: 1, fakesm.OpPutSecretValue: 2,
				fakesm.OpUpdateSecretVersionStage: 1, fakesm.OpUntagResource: 1},
			wantTokens: 2, // the rotate call's and the verification's
			check:      promotedAndCleared,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, tc.setup)
			tc.prepare(h)
			h.sm.ResetCalls()
			tokens, _ := h.amzn.counts()
			tc.step(h)
			got := h.sm.Calls()
			maps.DeleteFunc(got, func(_ string, n int) bool { return n == 0 })
			if !maps.Equal(got, tc.want) {
				t.Errorf("Secrets Manager calls = %v, want %v", got, tc.want)
			}
			if n, _ := h.amzn.counts(); n-tokens != tc.wantTokens {
				t.Errorf("LWA token calls = %d, want %d", n-tokens, tc.wantTokens)
			}
			if tc.check != nil {
				tc.check(t, h)
			}
		})
	}
}

func promotedAndCleared(t *testing.T, h *harness) {
	t.Helper()
	newest, _ := h.amzn.newest()
	if w := h.world(); !w.cur.Record.ClientSecret.Equal(newest.Value) || w.pending || w.daemonTags != 0 {
		t.Errorf("after the promotion: versions %v, state %+v", w.allVersions, w.state)
	}
}

// mustDelete delivers m and fails the test unless the Dispatcher deletes it.
func (h *harness) mustDelete(m notifications.Message) {
	h.t.Helper()
	if res := h.handle(m); !res.Delete {
		h.t.Fatalf("message %s: %+v, want it deleted", m.ID, res)
	}
}
