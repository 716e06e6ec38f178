package rotator

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
)

// The request watch reports every read to the Observer, whether it lists the requests or reads
// one secret's tags at a time, so that a watch that cannot read shows in the metrics instead of
// in debug logs alone.
func TestRequestWatchReportsEveryRead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		refuseListing bool
		failing       string // the call that fails in the second round
	}{
		{"listing", false, fakesm.OpListSecrets},
		{"one secret at a time", true, fakesm.OpDescribeSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, setup{expiry: t0.Add(farFromExpiry), requestPoll: time.Minute})
			var failing atomic.Bool
			fault := func(op, id string) fakesm.Fault {
				if f := refuseListing(op, id); tc.refuseListing && f.Err != nil {
					return f
				}
				if failing.Load() && op == tc.failing {
					return fakesm.Fault{Err: &smithy.GenericAPIError{Code: "InternalServiceError", Message: "try again"}}
				}
				return fakesm.Fault{}
			}
			h.smFault.Store(&fault)
			h.running(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// The scheduler's timer and the watch's first wait; then one round of the watch a minute.
			for round, fail := range []bool{false, true} {
				if err := h.clk.WaitCreated(ctx, 2+round); err != nil {
					t.Fatalf("round %d: the watch never waited: %v", round+1, err)
				}
				failing.Store(fail)
				h.clk.Advance(time.Minute)
				waitFor(t, "the watch's read", func() bool { return len(h.obs.watchReads()) > round })
			}
			want := []watchRead{{at: t0.Add(time.Minute), ok: true}, {at: t0.Add(2 * time.Minute), ok: false}}
			if got := h.obs.watchReads(); !slices.Equal(got, want) {
				t.Errorf("reads reported %+v, want %+v", got, want)
			}
		})
	}
}
