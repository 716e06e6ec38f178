package rotator

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
)

type verifyResult int

const (
	verifyRetry verifyResult = iota
	verifyPromoted
	verifyRejected
)

// verifyAndPromote is the only path to AWSCURRENT: the staged version v must mint an LWA token
// first (design invariant 2). Then one UpdateSecretVersionStage moves AWSCURRENT (a
// compare-and-set against the snapshot's current version). The tag call that clears the
// rotation's bookkeeping is finishPromotion's: a message in hand is deleted before it, since the
// secret is safe once current and the bookkeeping is not on the path to the consumers.
// staged says v is known to hold AWSPENDING.
func (r *Rotator) verifyAndPromote(ctx context.Context, a *appState, f facts, v vault.Version, staged bool, log *zap.Logger) verifyResult {
	app := *a.app.Load()
	log = log.With(zap.String("version_id", v.ID))
	if _, err := r.lwa.Token(ctx, app.ClientID, v.Record.ClientSecret); err != nil {
		if !rejectsSecret(err) {
			log.Warn("verifying the new secret with LWA; will retry", zap.Error(err))
			return verifyRetry
		}
		r.rejectSecret(ctx, a, f, v, staged, err, log)
		return verifyRejected
	}
	r.checkpoint(StepVerified)
	if err := r.vault.PromoteOn(ctx, f.snap, v.ID); err != nil {
		// Another replica may have moved AWSCURRENT since the snapshot: the retry judges the
		// message again against the new AWSCURRENT.
		log.Warn("promoting the verified secret to AWSCURRENT; will retry", zap.Error(err))
		return verifyRetry
	}
	r.checkpoint(StepPromoted)
	r.markPromoted(a, v, log)
	return verifyPromoted
}

// promoteNow verifies, promotes and clears the bookkeeping in one go (the scheduler's paths,
// which have no message to delete first).
func (r *Rotator) promoteNow(ctx context.Context, a *appState, f facts, v vault.Version, staged bool, log *zap.Logger) verifyResult {
	res := r.verifyAndPromote(ctx, a, f, v, staged, log)
	if res == verifyPromoted && !r.finishPromotion(ctx, a, f, v, log) {
		return verifyRetry
	}
	return res
}

// finishPromotion clears the rotation's bookkeeping after v was promoted on f (one tag call) and
// plans the next pass from what it wrote. On failure the secret is safe; the next pass finds it
// current and finishes the bookkeeping itself (plan's finished rule). The caller holds a.work.
func (r *Rotator) finishPromotion(ctx context.Context, a *appState, f facts, v vault.Version, log *zap.Logger) bool {
	app := *a.app.Load()
	after := stateAfterPromotion(f.snap.State, v.Record)
	if err := r.vault.SaveChanges(ctx, app.SecretID, f.snap.State, after); err != nil {
		log.Warn("clearing rotation state after promotion; will retry", zap.String("version_id", v.ID), zap.Error(err))
		a.dirty.Store(true)
		return false
	}
	r.replan(a, promoted(f, v, after))
	return true
}

// finishLater is finishPromotion as a message's follow-up work (notifications.Result.Then): it
// runs once the message is deleted, under the application's work lock again, unless a pass has
// planned on a fresh read in between (that pass finished the bookkeeping its own way).
func (r *Rotator) finishLater(a *appState, f facts, v vault.Version, log *zap.Logger) func(context.Context) {
	a.finishing = v.ID
	return func(ctx context.Context) {
		a.work.Lock()
		defer func() {
			a.work.Unlock()
			if a.dirty.Load() {
				r.poke()
			}
		}()
		r.checkpoint(StepDone)
		if a.finishing != v.ID {
			return
		}
		a.finishing = ""
		r.finishPromotion(ctx, a, f, v, log)
	}
}

// rejectSecret takes the label off a secret LWA refused, counts it and says so.
func (r *Rotator) rejectSecret(ctx context.Context, a *appState, f facts, v vault.Version, staged bool, err error, log *zap.Logger) {
	cerr := r.vault.ClearPendingOn(ctx, f.snap, v.ID, staged)
	r.obs.Rotation(a.app.Load().Name, ResultRejected)
	log.Error("LWA rejected the new secret; the vault is unchanged (possible planted secret)", zap.Error(err))
	if cerr != nil {
		log.Warn("clearing the rejected pending version", zap.Error(cerr))
	}
}

// markPromoted records a promotion this process just made: status, count, log, and the
// consumers' hook (AWSCURRENT has moved, whatever happens to the bookkeeping next).
func (r *Rotator) markPromoted(a *appState, v vault.Version, log *zap.Logger) {
	app, now := *a.app.Load(), r.clock.Now()
	a.knownCurrent, a.counted = v.ID, v.ID
	// A SIGUSR1 that arrived while this rotation finished is answered by it.
	a.manualAt.Store(0)
	a.setStatus(func(s *Status) {
		s.LastSuccess = now
		s.CurrentExpiry = v.Record.ExpiresAt
		s.PreviousExpiry = v.Record.PreviousExpiresAt
		s.InFlightSince = time.Time{}
		s.CurrentValid, s.LastProbe = Valid, now // it just minted a token
		s.PendingSince = time.Time{}
	})
	r.obs.Rotation(app.Name, ResultSuccess)
	log.Info("new secret verified and promoted to AWSCURRENT; the old one stays as AWSPREVIOUS until it expires",
		zap.Time("previous_expires_at", v.Record.PreviousExpiresAt))
	r.promoted(Promotion{App: app.Name, SecretID: app.SecretID, VersionID: v.ID, ExpiresAt: v.Record.ExpiresAt,
		PreviousExpiresAt: v.Record.PreviousExpiresAt, At: now})
}

// promoted is the facts the writes of a promotion leave behind: the vault's own account of the
// labels (Snapshot.Promoted), the bookkeeping after, and no SIGUSR1 still owed.
func promoted(f facts, v vault.Version, st vault.RotationState) facts {
	f.snap = f.snap.Promoted(v)
	f.snap.State, f.manual = st, false
	return f
}

// replan plans the next pass from facts this process has just written, without reading them
// back: when the plan only waits, the status and the next pass are set from it; when it would
// act, the next pass acts on a fresh snapshot instead.
func (r *Rotator) replan(a *appState, f facts) {
	set := r.settings()
	act := plan(f, set, r.clock.Now(), r.rand())
	if act.request || act.watchdog || act.clearRequest || act.resume || act.clearPending != "" {
		a.dirty.Store(true)
	} else {
		if !act.nextProbe.IsZero() {
			a.probeAt = act.nextProbe
		}
		a.setStatus(func(s *Status) { publish(s, f, act, set, r.clock.Now()) })
		a.nextAt.Store(act.wakeAt.UnixNano())
	}
	r.poke()
}

// rejectsSecret tells LWA's verdict on a secret from a failure to get one.
func rejectsSecret(err error) bool {
	return errors.Is(err, spapi.ErrInvalidClient) || errors.Is(err, spapi.ErrUnauthorized)
}
