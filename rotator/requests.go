package rotator

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// minRequestGap caps the request watch at one DescribeSecret a second over all applications,
// whatever RequestPoll says: with 1000 applications a round takes about 17 minutes rather than
// costing 1000 calls a minute.
const minRequestGap = time.Second

// watchRequests reads each application's tags in turn, evenly spaced, and wakes the scheduler
// when it finds an operator's rotation request it has not seen. The scheduler then treats the
// request like a SIGUSR1 for that application; this loop only makes it notice sooner than the
// application's next tick.
func (r *Rotator) watchRequests(ctx context.Context) {
	for ctx.Err() == nil {
		apps := r.appList()
		gap := max(r.requestPoll/time.Duration(max(len(apps), 1)), minRequestGap)
		if len(apps) == 0 {
			gap = r.requestPoll
		}
		if !clock.Sleep(ctx, r.clock, gap) {
			return
		}
		for i, a := range apps {
			if i > 0 && !clock.Sleep(ctx, r.clock, gap) {
				return
			}
			r.checkRequest(ctx, a)
		}
	}
}

// checkRequest reads one application's state without holding its lock across the call: the
// tick reads the state again anyway before acting.
func (r *Rotator) checkRequest(ctx context.Context, a *appState) {
	a.mu.Lock()
	secretID, name := a.app.SecretID, a.app.Name
	a.mu.Unlock()
	r.mu.Lock()
	seen := a.status.RequestedAt
	r.mu.Unlock()
	st, err := r.vault.LoadState(ctx, secretID)
	if err != nil {
		// The tick reports vault failures; the watch only looks for requests.
		r.log.Debug("reading tags for rotation requests", zap.String("app", name), zap.Error(err))
		return
	}
	if !st.RequestPending() || st.Request.At.Equal(seen) {
		return
	}
	r.setStatus(a, func(s *Status) { s.RequestedAt = st.Request.At })
	r.log.Info("rotation requested by an operator; scheduling it", zap.String("app", name),
		zap.Time("request_at", st.Request.At), zap.String("request_by", st.Request.By), zap.String("reason", st.Request.Reason))
	r.poke()
}
