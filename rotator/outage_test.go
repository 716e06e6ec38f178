package rotator

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
)

// TestThirtyMinuteOutagesNeverLoseTheSecret: Secrets Manager down for 30 minutes while the new
// secret is being staged, and Secrets Manager or LWA down for 30 minutes while it is verified
// and promoted. Before it is staged the message is kept in hand (nothing for SQS to redeliver,
// so nothing for the dead-letter queue); once staged, the message leaves and the vault carries
// the rest. Each ends with the secret promoted within one backoff step after recovery, one rotate
// call, no timeout, and no secret-bearing message left behind.
func TestThirtyMinuteOutagesNeverLoseTheSecret(t *testing.T) {
	t.Parallel()
	const outage = 30 * time.Minute
	tests := []struct {
		name   string
		failSM string // the Secrets Manager operation that fails during the outage
		lwa    bool   // LWA answers 503 during the outage
		staged bool   // the outage hits after the secret is durable: the message leaves at once
	}{
		{"Secrets Manager down while staging", fakesm.OpPutSecretValue, false, false},
		{"Secrets Manager down while promoting", fakesm.OpUpdateSecretVersionStage, false, true},
		{"LWA down while verifying", "", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, t0.Add(20*day))
			ctx := context.Background()
			h.r.Tick(ctx) // the rotation is due: one rotate call
			newSecret, msg := h.delivered()
			msg.ReceivedAt, msg.HoldUntil = h.clk.Now(), h.clk.Now().Add(11*time.Hour)
			recovery := h.clk.Now().Add(outage)
			down := func() bool { return h.clk.Now().Before(recovery) }
			if tc.failSM != "" {
				f := func(op, _ string) fakesm.Fault {
					if op == tc.failSM && down() {
						return fakesm.Fault{Err: &types.InternalServiceError{Message: aws.String("injected outage")}}
					}
					return fakesm.Fault{}
				}
				h.smFault.Store(&f)
			}
			if tc.lwa {
				h.amzn.fail(&spapi.Error{API: "lwa", Op: "token", StatusCode: http.StatusServiceUnavailable, Kind: spapi.ErrTransient}, nil, false)
			}

			var promotedAt time.Time
			if !tc.staged {
				promotedAt = h.holdThrough(msg)
			} else {
				if res := h.handle(msg); !res.Delete || h.obs.outcomes(notifications.OutcomeStaged) != 1 {
					t.Fatalf("the staged secret's message: %+v, counters %+v; want deleted as staged", res, h.obs.notes)
				}
				next := h.r.Tick(ctx)
				for i := 0; !h.world().cur.Record.ClientSecret.Equal(newSecret); i++ {
					if i > 1000 {
						t.Fatal("no promotion after 1000 passes")
					}
					if !next.After(h.clk.Now()) {
						t.Fatalf("pass %d asks to run again at once while the outage lasts", i)
					}
					h.clk.Set(next)
					if tc.lwa && !down() {
						h.amzn.fail(nil, nil, false)
					}
					next = h.r.Tick(ctx)
				}
				promotedAt = h.clk.Now()
			}

			if late := promotedAt.Sub(recovery); late < 0 || late > vaultRetryMax {
				t.Errorf("promoted %v after recovery, want within one backoff step (at most %v)", late, vaultRetryMax)
			}
			w := h.world()
			if !w.cur.Record.ClientSecret.Equal(newSecret) || !w.prev.Record.ClientSecret.Equal(h.old) || w.pending {
				t.Fatalf("after the outage: %v", w.allVersions)
			}
			if h.amzn.calls() != 1 || h.obs.rotations(ResultTimeout) != 0 || h.obs.rotations(ResultSuccess) != 1 {
				t.Errorf("rotate calls %d, timeouts %d, successes %d; want 1, 0, 1", h.amzn.calls(), h.obs.rotations(ResultTimeout),
					h.obs.rotations(ResultSuccess))
			}
			if n := h.sm.Count(tc.failSM); tc.failSM != "" && n > 30 {
				t.Errorf("%d %s calls over a 30-minute outage: not backing off", n, tc.failSM)
			}
			if tokens, _ := h.amzn.counts(); tokens > 30 {
				t.Errorf("%d token calls over a 30-minute outage: not backing off", tokens)
			}
		})
	}
}

// holdThrough hands msg to the dispatcher, which keeps it in hand through the outage: each time
// the rotator waits on the fake clock, the clock moves exactly to its wake-up. It returns the
// time the message's handling ended, which must be a delete.
func (h *harness) holdThrough(msg notifications.Message) time.Time {
	h.t.Helper()
	res := make(chan notifications.Result, 1)
	go func() { res <- h.handle(msg) }()
	for i := 0; ; i++ {
		created := h.clk.Created()
		waiting := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		go func() { waiting <- h.clk.WaitCreated(ctx, created+1) }()
		select {
		case r := <-res:
			cancel()
			if !r.Delete {
				h.t.Fatalf("the held message ended %+v, want deleted", r)
			}
			return h.clk.Now()
		case err := <-waiting:
			cancel()
			if err != nil {
				h.t.Fatalf("the handler neither returned nor waited: %v", err)
			}
		}
		if i > 1000 {
			h.t.Fatal("the message was held for more than 1000 waits")
		}
		if next, ok := h.clk.Next(); ok {
			h.clk.Set(next)
		}
	}
}
