package rotator

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// secretLifetime is how long Amazon's secrets live; a secret's own expiry minus this is
// when it was minted.
const secretLifetime = 180 * 24 * time.Hour

// callSlack absorbs the difference between a secret's mint time as its expiry minus the
// lifetime gives it and the moment the rotate call was about to be made. Rotate calls are at least
// a minute apart, so it cannot mistake one call's secret for the next one's.
const callSlack = 10 * time.Second

// answered reports whether rec is the secret of the latest rotate call (minted no earlier than
// that call was about to be made), or whether no call of ours is outstanding at all.
func answered(st vault.RotationState, rec vault.Record) bool {
	if st.LastCallAt.IsZero() {
		return true
	}
	return !rec.ExpiresAt.Add(-secretLifetime).Before(st.LastCallAt.Add(-callSlack))
}

// stateAfterPromotion clears the bookkeeping when the promoted secret answers the latest rotate
// call. When it was minted before that call (a delayed or reordered message), the call may have
// minted a newer secret and shortened this one's life, and that secret is still owed: the
// rotation stays in flight from the call's time, so the watchdog either sees it arrive or asks
// again.
func stateAfterPromotion(st vault.RotationState, rec vault.Record) vault.RotationState {
	if answered(st, rec) {
		// A served request's note stays until its tags are removed, or the request would look
		// pending again and rotate a second time.
		return vault.RotationState{ServedRequest: st.ServedRequest}
	}
	st.RequestedAt = st.LastCallAt
	st.NoticedExpiry = time.Time{}
	return st
}

// rotationID tags a log line with the rotation it belongs to; lines outside any rotation get none.
func rotationID(id string) zap.Field {
	if id == "" {
		return zap.Skip()
	}
	return zap.String("rotation_id", id)
}

type verdict int

const (
	verdictRetry verdict = iota
	verdictPromoted
	verdictRejected
)

// verifyAndPromote is the only path to AWSCURRENT: the staged secret must mint an LWA token first
// (design invariant 2).
func (r *Rotator) verifyAndPromote(ctx context.Context, a *appState, versionID string, rec vault.Record, fromVersionID string, log *zap.Logger) verdict {
	log = log.With(zap.String("version_id", versionID))
	if _, err := r.lwa.Token(ctx, a.app.ClientID, rec.ClientSecret); err != nil {
		if errors.Is(err, spapi.ErrInvalidClient) || errors.Is(err, spapi.ErrUnauthorized) {
			cerr := r.vault.ClearPending(ctx, a.app.SecretID, versionID)
			r.obs.Rotation(a.app.Name, ResultRejected)
			log.Error("LWA rejected the new secret; the vault is unchanged (possible planted secret)", zap.Error(err))
			if cerr != nil {
				log.Warn("clearing the rejected pending version", zap.Error(cerr))
			}
			return verdictRejected
		}
		log.Warn("verifying the new secret with LWA; will retry", zap.Error(err))
		return verdictRetry
	}
	st, err := r.vault.LoadState(ctx, a.app.SecretID)
	if err != nil {
		log.Warn("reading rotation state before promotion; will retry", zap.Error(err))
		return verdictRetry
	}
	r.checkpoint(StepVerified)
	if err := r.vault.Promote(ctx, a.app.SecretID, versionID, fromVersionID); err != nil {
		// ErrCurrentMoved: another replica promoted something since we judged the order; the
		// retry judges it again against the new AWSCURRENT.
		log.Warn("promoting the verified secret to AWSCURRENT; will retry", zap.Error(err))
		return verdictRetry
	}
	r.checkpoint(StepPromoted)
	now := r.clock.Now()
	// A SIGUSR1 that arrived while this rotation finished is answered by it.
	a.manual.Store(false)
	r.setStatus(a, func(s *Status) {
		s.LastSuccess = now
		s.CurrentExpiry = rec.ExpiresAt
		s.PreviousExpiry = rec.PreviousExpiresAt
		s.InFlightSince = time.Time{}
	})
	r.obs.Rotation(a.app.Name, ResultSuccess)
	log.Info("new secret verified and promoted to AWSCURRENT; the old one stays as AWSPREVIOUS until it expires",
		zap.Time("previous_expires_at", rec.PreviousExpiresAt))
	if err := r.vault.SaveState(ctx, a.app.SecretID, stateAfterPromotion(st, rec)); err != nil {
		// The secret is safe; the redelivered message takes the duplicate path and clears this.
		log.Warn("clearing rotation state after promotion; will retry", zap.Error(err))
		return verdictRetry
	}
	r.poke()
	return verdictPromoted
}

// resumePending finishes or clears an AWSPENDING version left by an interrupted rotation. It
// reports whether the pending label is gone.
func (r *Rotator) resumePending(ctx context.Context, a *appState, cur, pend vault.Version, log *zap.Logger) bool {
	log = log.With(zap.String("pending_version_id", pend.ID))
	stale := !cur.Record.ExpiresAt.IsZero() && !pend.Record.ExpiresAt.After(cur.Record.ExpiresAt)
	if stale || pend.Record.ClientID != a.app.ClientID {
		log.Info("clearing a pending version that is not newer than the current secret")
		if err := r.vault.ClearPending(ctx, a.app.SecretID, pend.ID); err != nil {
			log.Warn("clearing a stale pending version", zap.Error(err))
			return false
		}
		return true
	}
	log.Info("resuming an interrupted rotation from its pending version")
	return r.verifyAndPromote(ctx, a, pend.ID, pend.Record, cur.ID, log) != verdictRetry
}
