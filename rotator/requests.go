package rotator

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// minRequestGap caps the request watch at one DescribeSecret a second over all applications,
// whatever RequestPoll says: with 1000 applications a round takes about 17 minutes rather than
// costing 1000 calls a minute.
const minRequestGap = time.Second

// watchRequests looks for operators' rotation requests and marks an application for the next
// pass when it finds one not seen before. The pass then treats the request like a SIGUSR1 for
// that application; this loop only makes it notice sooner. While the vault can list, one listing
// of the secrets carrying a request tag per RequestPoll does it (Vault.Requests); once it cannot
// (vault.ErrListDenied), each application's tags are read in turn, evenly spaced. It takes no
// lock: a busy application never holds it up.
func (r *Rotator) watchRequests(ctx context.Context) {
	for {
		if !clock.Sleep(ctx, r.clock, r.requestPoll) {
			return
		}
		if !r.listRequests(ctx) {
			break
		}
	}
	// The listing was refused at the end of a round's wait: this round reads each secret now.
	for first := true; ctx.Err() == nil; first = false {
		apps := r.reg.Load().order
		gap := max(r.requestPoll/time.Duration(max(len(apps), 1)), minRequestGap)
		if len(apps) == 0 {
			gap = r.requestPoll
		}
		if !first && !clock.Sleep(ctx, r.clock, gap) {
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

// listRequests is one round of the watch from one listing. It reports false when the vault
// cannot list, for the per-secret watch to take over.
func (r *Rotator) listRequests(ctx context.Context) bool {
	reg := r.reg.Load()
	ids := make([]string, 0, len(reg.order))
	for _, a := range reg.order {
		ids = append(ids, a.app.Load().SecretID)
	}
	found, err := r.vault.Requests(ctx, ids)
	switch {
	case ctx.Err() != nil:
		return true
	case errors.Is(err, vault.ErrListDenied):
		r.log.Info("cannot list secrets; watching for rotation requests one secret at a time", zap.Error(err))
		return false
	case err != nil:
		r.obs.RequestWatchRead(r.clock.Now(), err)
		r.log.Debug("listing rotation requests", zap.Error(err))
		return true
	}
	r.obs.RequestWatchRead(r.clock.Now(), nil)
	for _, a := range reg.order {
		if st, ok := found[a.app.Load().SecretID]; ok {
			r.noteRequest(a, st)
		}
	}
	return true
}

func (r *Rotator) checkRequest(ctx context.Context, a *appState) {
	app := *a.app.Load()
	st, err := r.vault.LoadState(ctx, app.SecretID)
	if err != nil {
		r.obs.RequestWatchRead(r.clock.Now(), err)
		// The pass reports vault failures; the watch only looks for requests.
		r.log.Debug("reading tags for rotation requests", zap.String("app", app.Name), zap.Error(err))
		return
	}
	r.obs.RequestWatchRead(r.clock.Now(), nil)
	r.noteRequest(a, st)
}

// noteRequest marks a for the next pass when st holds an operator's request not seen before.
func (r *Rotator) noteRequest(a *appState, st vault.RotationState) {
	seen := a.status.Load().RequestedAt
	if !RequestPending(st) || st.Request.At.Equal(seen) {
		return
	}
	a.setStatus(func(s *Status) { s.RequestedAt = st.Request.At })
	a.dirty.Store(true)
	r.log.Info("rotation requested by an operator; scheduling it", zap.String("app", a.app.Load().Name),
		zap.Time("request_at", st.Request.At), zap.String("request_by", st.Request.By), zap.String("reason", st.Request.Reason))
	r.poke()
}
