package rotator

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/vault"
)

const (
	// staleNoticeSlack: how close a notice's expiry must be to the previous secret's to be
	// taken as about that secret. Both come from Amazon to the millisecond; a secret shortened by
	// a later call dies at least a minute (the rotate rate limit) after the previous one.
	staleNoticeSlack = 10 * time.Second
)

// Handle is the SQS handler: it parses, routes by client id and reports whether the message may
// be deleted. It deletes only once the work is durable or the message is proven stale or a
// duplicate (design invariant 1).
func (r *Rotator) Handle(ctx context.Context, m notifications.Message) notifications.Result {
	log := r.log.With(zap.String("message_id", m.ID), zap.Int("receive_count", m.ReceiveCount))
	log.Debug("message received", zap.String("sender_id", m.SenderID))
	if len(r.senders) > 0 && !r.senders[m.SenderID] {
		r.obs.Notification("", "unknown", OutcomeRejected)
		log.Error("message from a sender that is not allowed; leaving it for the dead-letter queue", zap.String("sender_id", m.SenderID))
		return notifications.Result{RetryAfter: r.rejectedRetry}
	}
	n, err := notifications.Parse(m.Body)
	if err != nil {
		r.obs.Notification("", "unknown", OutcomeMalformed)
		log.Error("unparseable notification; leaving it for the dead-letter queue", zap.Error(err))
		return notifications.Result{RetryAfter: r.rejectedRetry}
	}
	meta := n.Meta()
	log = log.With(zap.String("notification_id", meta.Metadata.NotificationID), zap.String("notification_type", meta.Type))
	clientID := ""
	switch v := n.(type) {
	case *notifications.ExpiryNotice:
		clientID = v.ClientID
	case *notifications.NewSecret:
		clientID = v.ClientID
	}
	a, ok := r.lookup(clientID)
	if !ok {
		r.obs.Notification("", meta.Type, OutcomeUnknownClient)
		log.Error("notification for a client id this daemon does not manage; leaving it for the dead-letter queue", zap.String("client_id", clientID))
		return notifications.Result{RetryAfter: r.rejectedRetry}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	log = log.With(zap.String("app", a.app.Name))
	if want := a.app.ApplicationID; want != "" && meta.Metadata.ApplicationID != want {
		r.obs.Notification(a.app.Name, meta.Type, OutcomeRejected)
		log.Error("notification names another application id; rejecting it",
			zap.String("application_id", meta.Metadata.ApplicationID), zap.String("configured_application_id", want))
		return notifications.Result{RetryAfter: r.rejectedRetry}
	}
	var res notifications.Result
	switch v := n.(type) {
	case *notifications.ExpiryNotice:
		_, res = r.handleExpiry(ctx, a, v, meta.Type, log)
	case *notifications.NewSecret:
		_, res = r.handleNewSecret(ctx, a, v, meta.Type, log, true)
	}
	if res.Delete {
		a.retries = 0
	}
	return res
}

func (r *Rotator) handleExpiry(ctx context.Context, a *appState, n *notifications.ExpiryNotice, typ string, log *zap.Logger) (string, notifications.Result) {
	cur, st, err := r.readVault(ctx, a)
	if err != nil {
		return r.outcome(a, typ, OutcomeFailed, r.retryLater(a), func() {
			log.Warn("reading the vault for an expiry notice; will retry", zap.Error(err))
		})
	}
	log = log.With(rotationID(st.RotationID), zap.Time("expires_at", n.ExpiresAt))
	if aboutReplacedSecret(n, cur.Record, r.clock.Now()) {
		return r.outcome(a, typ, OutcomeStale, notifications.Result{Delete: true}, func() {
			log.Info("expiry notice is about a secret already replaced", zap.Time("current_expires_at", cur.Record.ExpiresAt))
		})
	}
	if !st.NoticedExpiry.Equal(n.ExpiresAt) {
		st.NoticedExpiry = n.ExpiresAt
		if err := r.vault.SaveState(ctx, a.app.SecretID, st); err != nil {
			return r.outcome(a, typ, OutcomeFailed, r.retryLater(a), func() {
				log.Warn("recording an expiry notice; will retry", zap.Error(err))
			})
		}
	}
	renewBefore, _ := r.timings()
	r.poke()
	return r.outcome(a, typ, OutcomeProcessed, notifications.Result{Delete: true}, func() {
		log.Info("expiry notice recorded", zap.String("reason", n.Reason), zap.Time("rotation_planned_at", n.ExpiresAt.Add(-renewBefore)))
	})
}

// aboutReplacedSecret tells a notice about an older secret (which dies on its own schedule) from
// one about the current secret. A notice sent before the current secret was minted is about an
// older one; so is one whose expiry is no later than the previous secret's, since every older
// secret dies no later than that. The current secret can die earlier than stored, though: a
// rotate call whose secret never reached us shortens its life, and Amazon's notice may be the
// only word of it, so an earlier expiry alone does not make a notice stale.
func aboutReplacedSecret(n *notifications.ExpiryNotice, cur vault.Record, now time.Time) bool {
	if n.ExpiresAt.Before(now) {
		return true // the current secret still works, or we could not be reading this
	}
	if prev := cur.PreviousExpiresAt; !prev.IsZero() && !n.ExpiresAt.After(prev.Add(staleNoticeSlack)) {
		return true
	}
	if stored := cur.ExpiresAt; !stored.IsZero() {
		minted := stored.Add(-secretLifetime)
		return n.EventTime.Before(minted.Add(staleNoticeSlack))
	}
	return false
}

// handleNewSecret stages, verifies and promotes n. mayResettle allows one pass through settling
// a newer pending secret first; a second one waits for redelivery rather than looping.
func (r *Rotator) handleNewSecret(ctx context.Context, a *appState, n *notifications.NewSecret, typ string, log *zap.Logger, mayResettle bool) (string, notifications.Result) {
	cur, st, err := r.readVault(ctx, a)
	if err != nil {
		return r.outcome(a, typ, OutcomeFailed, r.retryLater(a), func() {
			log.Warn("reading the vault for a new secret; will retry", zap.Error(err))
		})
	}
	rid := st.RotationID
	if rid == "" {
		rid = "unsolicited" // a secret nobody here asked for: still one id for all its lines
	}
	log = log.With(rotationID(rid), zap.Time("expires_at", n.ExpiresAt))
	token := vault.TokenFor(n.Metadata.NotificationID)

	// Never backwards: order by the secret's own expiry time, not by arrival.
	if stored := cur.Record.ExpiresAt; !stored.IsZero() && !n.ExpiresAt.After(stored) {
		if cur.Record.ClientSecret.Equal(n.Secret) {
			if !st.RequestedAt.IsZero() && answered(st, cur.Record) {
				// A crash after promotion left the rotation marked in flight: finish the bookkeeping
				// (unless this is an old copy and a later rotate call is still owed its secret).
				if err := r.vault.SaveState(ctx, a.app.SecretID, stateAfterPromotion(st, cur.Record)); err != nil {
					return r.outcome(a, typ, OutcomeFailed, r.retryLater(a), func() {
						log.Warn("clearing rotation state; will retry", zap.Error(err))
					})
				}
			}
			return r.outcome(a, typ, OutcomeDuplicate, notifications.Result{Delete: true}, func() {
				log.Info("new secret already current; acknowledging the duplicate", zap.String("version_id", cur.ID))
			})
		}
		if err := r.vault.ClearPending(ctx, a.app.SecretID, token); err != nil && !errors.Is(err, vault.ErrNotFound) {
			return r.outcome(a, typ, OutcomeFailed, r.retryLater(a), func() {
				log.Warn("clearing a stale pending version; will retry", zap.Error(err))
			})
		}
		return r.outcome(a, typ, OutcomeStale, notifications.Result{Delete: true}, func() {
			log.Warn("new secret is older than the stored one; acknowledging it without change", zap.Time("current_expires_at", stored))
		})
	}

	pend, ok, err := r.vault.Pending(ctx, a.app.SecretID)
	if err != nil {
		return r.outcome(a, typ, OutcomeFailed, r.retryLater(a), func() {
			log.Warn("reading the pending version; will retry", zap.Error(err))
		})
	}
	if ok && pend.ID != token {
		if pend.Record.ExpiresAt.After(n.ExpiresAt) {
			// A newer secret is pending, but unverified: it may be planted. Settle it first, and
			// only then judge this message against whatever is current.
			log.Info("a newer secret is pending; settling it before this one", zap.String("pending_version_id", pend.ID))
			if !mayResettle || !r.resumePending(ctx, a, cur, pend, log) {
				return r.outcome(a, typ, OutcomeFailed, r.retryLater(a), nil)
			}
			return r.handleNewSecret(ctx, a, n, typ, log, false)
		}
		if err := r.vault.ClearPending(ctx, a.app.SecretID, pend.ID); err != nil {
			return r.outcome(a, typ, OutcomeFailed, r.retryLater(a), func() {
				log.Warn("clearing a superseded pending version; will retry", zap.Error(err))
			})
		}
	}

	rec := vault.Record{ClientID: n.ClientID, ClientSecret: n.Secret, ExpiresAt: n.ExpiresAt, PreviousExpiresAt: n.OldExpiresAt}
	log.Info("new secret received; staging it as AWSPENDING", zap.String("version_id", token))
	r.checkpoint(StepSecretReceived)
	if err := r.vault.Stage(ctx, a.app.SecretID, token, rec); err != nil {
		if errors.Is(err, vault.ErrTokenConflict) {
			r.obs.Rotation(a.app.Name, ResultRejected)
			return r.outcome(a, typ, OutcomeRejected, notifications.Result{RetryAfter: r.rejectedRetry}, func() {
				log.Error("a different secret was already staged under this notification id; rejecting the message", zap.String("version_id", token))
			})
		}
		return r.outcome(a, typ, OutcomeFailed, r.retryLater(a), func() {
			log.Warn("staging the new secret as AWSPENDING; will retry", zap.Error(err))
		})
	}
	r.checkpoint(StepStaged)
	switch r.verifyAndPromote(ctx, a, token, rec, cur.ID, log) {
	case verdictPromoted:
		r.checkpoint(StepDone)
		return r.outcome(a, typ, OutcomeProcessed, notifications.Result{Delete: true}, nil)
	case verdictRejected:
		// Never deleted: a message the daemon refuses goes to the dead-letter queue, where an
		// operator can still find it.
		return r.outcome(a, typ, OutcomeRejected, notifications.Result{RetryAfter: r.rejectedRetry}, nil)
	default:
		return r.outcome(a, typ, OutcomeFailed, r.retryLater(a), nil)
	}
}

// outcome counts a message's outcome, then says what happened: state before words, so whoever
// reads the log line finds the metric already moved. Every return of a handler passes here once.
func (r *Rotator) outcome(a *appState, typ, outcome string, res notifications.Result, say func()) (string, notifications.Result) {
	r.obs.Notification(a.app.Name, typ, outcome)
	if say != nil {
		say()
	}
	return outcome, res
}

// retryLater leaves a message on the queue and brings it back after a short, jittered delay that
// grows while this application's messages keep failing. It does not touch the status: readiness
// is about the vault, and a message can fail on LWA just as well. Callers hold a.mu.
func (r *Rotator) retryLater(a *appState) notifications.Result {
	a.retries++
	return notifications.Result{RetryAfter: Backoff(a.retries, vaultRetryMin, vaultRetryMax, r.rand)}
}
