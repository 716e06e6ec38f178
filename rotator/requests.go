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

// watchRequests reads each application's tags in turn, evenly spaced, and marks an application
// for the next pass when it finds an operator's rotation request not seen before. The pass then
// treats the request like a SIGUSR1 for that application; this loop only makes it notice sooner.
// It takes no lock: a busy application never holds it up.
func (r *Rotator) watchRequests(ctx context.Context) {
	for ctx.Err() == nil {
		apps := r.reg.Load().order
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

func (r *Rotator) checkRequest(ctx context.Context, a *appState) {
	app := *a.app.Load()
	seen := a.status.Load().RequestedAt
	st, err := r.vault.LoadState(ctx, app.SecretID)
	if err != nil {
		// The pass reports vault failures; the watch only looks for requests.
		r.log.Debug("reading tags for rotation requests", zap.String("app", app.Name), zap.Error(err))
		return
	}
	if !st.RequestPending() || st.Request.At.Equal(seen) {
		return
	}
	a.setStatus(func(s *Status) { s.RequestedAt = st.Request.At })
	a.dirty.Store(true)
	r.log.Info("rotation requested by an operator; scheduling it", zap.String("app", app.Name),
		zap.Time("request_at", st.Request.At), zap.String("request_by", st.Request.By), zap.String("reason", st.Request.Reason))
	r.poke()
}
