package rotator

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// Receive implements notifications.Receiver: it routes by client id, judges the notification on
// one snapshot of the application's secret, and performs the verdict, once. The Dispatcher
// deletes the message only for a Done outcome: once the work is durable or the message is proven
// stale or a duplicate (design invariant 1); it holds and retries a failed one.
func (r *Rotator) Receive(ctx context.Context, n notifications.Notification, m notifications.Message) notifications.Handled {
	meta := n.Meta()
	log := r.log.With(zap.String("message_id", m.ID), zap.String("notification_id", meta.Metadata.NotificationID),
		zap.String("notification_type", meta.Type))
	clientID := notifications.ClientID(n)
	a, ok := r.lookup(clientID)
	if !ok {
		return notifications.Handled{Outcome: notifications.OutcomeUnknownClient, Say: func() {
			log.Error("notification for a client id this daemon does not manage; leaving it for the dead-letter queue", zap.String("client_id", clientID))
		}}
	}
	log = log.With(zap.String("app", a.app.Load().Name))
	return r.attempt(ctx, a, n, log)
}

// attempt is one try at a notification, holding the application's work lock for it alone.
func (r *Rotator) attempt(ctx context.Context, a *appState, n notifications.Notification, log *zap.Logger) notifications.Handled {
	a.work.Lock()
	defer func() {
		a.work.Unlock()
		if a.dirty.Load() {
			r.poke() // a pass skipped this application while it was busy, or the verdict asked for one
		}
	}()
	return r.receive(ctx, a, n, log, true)
}

// receive judges n on a fresh snapshot and performs the verdict. mayResettle allows one round of
// settling a newer pending secret first; a second waits for redelivery rather than looping.
func (r *Rotator) receive(ctx context.Context, a *appState, n notifications.Notification, log *zap.Logger, mayResettle bool) notifications.Handled {
	app := *a.app.Load()
	f, err := r.read(ctx, a, app)
	if err != nil {
		return handled(app, notifications.OutcomeFailed, func() { log.Warn("reading the vault for a notification; will retry", zap.Error(err)) })
	}
	r.noteCurrent(a, f, movedExternally(f), false)
	v := judge(n, f, r.clock.Now())
	rid := f.snap.State.RotationID
	if rid == "" && v.stage {
		rid = "unsolicited" // a secret nobody here asked for: still one id for all its lines
	}
	log = log.With(rotationID(rid))
	if v.settleFirst {
		log.Info("a newer secret is pending; settling it before this one", zap.String("pending_version_id", f.snap.Pending.ID))
		if !mayResettle || r.promoteNow(ctx, a, f, *f.snap.Pending, true, log) == verifyRetry {
			a.dirty.Store(true) // the pending phase settles it too, whatever becomes of this message
			return handled(app, notifications.OutcomeFailed, nil)
		}
		return r.receive(ctx, a, n, log, false)
	}
	if failed := r.writeVerdict(ctx, a, f, v, log); failed != nil {
		return handled(app, notifications.OutcomeFailed, failed)
	}
	if v.stage {
		return r.stageAndPromote(ctx, a, f, v, log)
	}
	return handled(app, v.outcome, func() { say(log, v, f, r.settings()) })
}

// writeVerdict makes a verdict's tag and label writes (staging aside); on a failure it returns
// the line that says so.
func (r *Rotator) writeVerdict(ctx context.Context, a *appState, f facts, v verdict, log *zap.Logger) func() {
	if v.clearPending != "" {
		if err := r.vault.ClearPendingOn(ctx, f.snap, v.clearPending, false); !cleared(err) {
			return func() { log.Warn("clearing a stale pending version; will retry", zap.Error(err)) }
		}
	}
	if v.save != nil {
		if err := r.vault.SaveChanges(ctx, f.app.SecretID, f.snap.State, *v.save); err != nil {
			return func() { log.Warn("saving rotation state for a notification; will retry", zap.Error(err)) }
		}
		if v.outcome == notifications.OutcomeDuplicate {
			// The rotation was finished before this redelivery (a crash or a lost answer after
			// the promotion): count it if nobody here did, and plan again.
			r.promotionSeen(a, f.snap.Current)
			a.dirty.Store(true)
		}
	}
	if v.wake {
		a.dirty.Store(true)
	}
	return nil
}

// stageAndPromote puts the new secret as AWSPENDING, then verifies and promotes it.
func (r *Rotator) stageAndPromote(ctx context.Context, a *appState, f facts, v verdict, log *zap.Logger) notifications.Handled {
	app := *a.app.Load()
	log = log.With(zap.Time("expires_at", v.record.ExpiresAt))
	log.Info("new secret received; staging it as AWSPENDING", zap.String("version_id", v.token))
	r.checkpoint(StepSecretReceived)
	if v.verifyFirst {
		if _, err := r.lwa.Token(ctx, app.ClientID, v.record.ClientSecret); err != nil {
			if rejectsSecret(err) {
				r.obs.Rotation(app.Name, ResultRejected)
				return handled(app, notifications.OutcomeRejected, func() {
					log.Error("LWA rejected the new secret; the secret already staged keeps its label (possible planted secret)",
						zap.String("pending_version_id", f.snap.Pending.ID), zap.Error(err))
				})
			}
			return handled(app, notifications.OutcomeFailed, func() {
				log.Warn("verifying the new secret before it takes the staged secret's label; will retry", zap.Error(err))
			})
		}
	}
	if err := r.vault.StageOn(ctx, f.snap, v.token, v.record); err != nil {
		if stagingOutcome(err) == notifications.OutcomeRejected {
			r.obs.Rotation(app.Name, ResultRejected)
			return handled(app, notifications.OutcomeRejected, func() {
				log.Error("a different secret was already staged under this notification id; rejecting the message", zap.String("version_id", v.token))
			})
		}
		// A put whose answer was lost may have staged it: let the pending phase look. Meanwhile
		// every replica learns that the secret is in hand, so that none asks Amazon again while
		// this message is held, however long the put keeps failing.
		a.dirty.Store(true)
		inHand := holding(f.snap.State, r.holder, r.clock.Now())
		if serr := r.vault.SaveChanges(ctx, app.SecretID, f.snap.State, inHand); serr != nil {
			log.Warn("saying the new secret is in hand", zap.Error(serr))
		}
		return handled(app, notifications.OutcomeFailed, func() { log.Warn("staging the new secret as AWSPENDING; will retry", zap.Error(err)) })
	}
	r.checkpoint(StepStaged)
	now := r.clock.Now()
	a.setStatus(func(s *Status) {
		if s.PendingSince.IsZero() {
			s.PendingSince = now
		}
	})
	nv := vault.Version{ID: v.token, Record: v.record}
	switch r.verifyAndPromote(ctx, a, f, nv, true, log) {
	case verifyPromoted:
		h := handled(app, notifications.OutcomeProcessed, nil)
		h.Then = r.finishLater(a, f, nv, log)
		return h
	case verifyRejected:
		// Never deleted: a message the daemon refuses goes to the dead-letter queue, where an
		// operator can still find it.
		return handled(app, notifications.OutcomeRejected, nil)
	default:
		// The secret is durable as AWSPENDING, encrypted with the customer key: the plaintext
		// message may leave SQS. Verification and promotion continue from the vault, on the
		// scheduler's backoff (the pending phase), whatever LWA or Secrets Manager do meanwhile.
		a.dirty.Store(true)
		return handled(app, notifications.OutcomeStaged, func() {
			log.Warn("new secret staged as AWSPENDING but not yet verified or promoted; continuing from the vault", zap.String("version_id", v.token))
		})
	}
}

// inHandLease is how long a replica's word that it holds a new secret lasts. The holder renews
// it with every failed try, which the Dispatcher makes at most five minutes apart; a holder that
// dies leaves its message to come back on SQS to another replica, which says it again.
const inHandLease = 15 * time.Minute

// holding is the state that says holder has the new secret in hand at now.
func holding(st vault.RotationState, holder string, now time.Time) vault.RotationState {
	st.InHand = vault.Lease{Until: now.Add(inHandLease), By: holder}
	return st
}

// cleared judges a ClearPendingOn: a version that no longer exists has no label to clear.
func cleared(err error) bool { return err == nil || errors.Is(err, vault.ErrNotFound) }

// stagingOutcome judges a failed StageOn: a notification id whose token already holds another
// secret can never be staged (the message is refused and goes to the dead-letter queue); any other
// failure is tried again.
func stagingOutcome(err error) notifications.Outcome {
	if errors.Is(err, vault.ErrTokenConflict) {
		return notifications.OutcomeRejected
	}
	return notifications.OutcomeFailed
}

func handled(app App, o notifications.Outcome, say func()) notifications.Handled {
	return notifications.Handled{App: app.Name, Outcome: o, Say: say}
}

// say writes the last line for a verdict that needed no staging.
func say(log *zap.Logger, v verdict, f facts, s Settings) {
	cur := f.snap.Current
	switch v.reason {
	case reasonOtherApplication:
		log.Error("notification names another application id; rejecting it",
			zap.String("application_id", v.applicationID), zap.String("configured_application_id", f.app.ApplicationID))
	case reasonReplacedSecret:
		log.Info("expiry notice is about a secret already replaced", zap.Time("expires_at", v.noticed), zap.Time("current_expires_at", cur.Record.ExpiresAt))
	case reasonNoticeRecorded, reasonNoticeKnown:
		log.Info("expiry notice recorded", zap.Time("expires_at", v.noticed), zap.Time("rotation_planned_at", v.noticed.Add(-s.RenewBefore)))
	case reasonAlreadyCurrent:
		log.Info("new secret already current; acknowledging the duplicate", zap.String("version_id", cur.ID))
	case reasonOlderSecret:
		log.Warn("new secret is older than the stored one; acknowledging it without change", zap.Time("current_expires_at", cur.Record.ExpiresAt))
	}
}
