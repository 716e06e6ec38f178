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
// compare-and-set against the snapshot's current version) and one tag call clears the
// bookkeeping. staged says v is known to hold AWSPENDING.
func (r *Rotator) verifyAndPromote(ctx context.Context, a *appState, f facts, v vault.Version, staged bool, log *zap.Logger) verifyResult {
	app := *a.app.Load()
	log = log.With(zap.String("version_id", v.ID))
	if _, err := r.lwa.Token(ctx, app.ClientID, v.Record.ClientSecret); err != nil {
		if !rejectsSecret(err) {
			log.Warn("verifying the new secret with LWA; will retry", zap.Error(err))
			return verifyRetry
		}
		cerr := r.vault.ClearPendingOn(ctx, f.snap, v.ID, staged)
		r.obs.Rotation(app.Name, ResultRejected)
		log.Error("LWA rejected the new secret; the vault is unchanged (possible planted secret)", zap.Error(err))
		if cerr != nil {
			log.Warn("clearing the rejected pending version", zap.Error(cerr))
		}
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
	now := r.clock.Now()
	// A SIGUSR1 that arrived while this rotation finished is answered by it.
	a.manual.Store(false)
	a.setStatus(func(s *Status) {
		s.LastSuccess = now
		s.CurrentExpiry = v.Record.ExpiresAt
		s.PreviousExpiry = v.Record.PreviousExpiresAt
		s.InFlightSince = time.Time{}
		s.Phase = PhaseIdle
	})
	r.obs.Rotation(app.Name, ResultSuccess)
	log.Info("new secret verified and promoted to AWSCURRENT; the old one stays as AWSPREVIOUS until it expires",
		zap.Time("previous_expires_at", v.Record.PreviousExpiresAt))
	if err := r.vault.SaveChanges(ctx, app.SecretID, f.snap.State, stateAfterPromotion(f.snap.State, v.Record)); err != nil {
		// The secret is safe; the redelivered message takes the duplicate path and clears this.
		log.Warn("clearing rotation state after promotion; will retry", zap.Error(err))
		return verifyRetry
	}
	// The schedule changed with the secret: plan this application again (and only it).
	a.dirty.Store(true)
	r.poke()
	return verifyPromoted
}

// rejectsSecret tells LWA's verdict on a secret from a failure to get one.
func rejectsSecret(err error) bool {
	return errors.Is(err, spapi.ErrInvalidClient) || errors.Is(err, spapi.ErrUnauthorized)
}
