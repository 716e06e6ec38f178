package rotator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/backoff"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// pass reads one application's snapshot, plans, publishes the status and performs the plan. It
// returns when it wants to run again. The caller holds a.work.
func (r *Rotator) pass(ctx context.Context, a *appState) time.Time {
	a.finishing = "" // this pass plans on a fresh read, and finishes any bookkeeping left
	app := *a.app.Load()
	log := r.log.With(zap.String("app", app.Name), zap.String("secret_id", app.SecretID))
	f, err := r.read(ctx, a, app)
	now := r.clock.Now()
	if err != nil {
		if ctx.Err() != nil {
			return now // shutting down: not a vault failure
		}
		fails := r.noteFailure(a, err)
		log.Error("reading the vault", zap.Error(err), zap.Int("consecutive_failures", fails))
		return now.Add(backoff.Equal(fails, vaultRetryMin, vaultRetryMax, r.rand))
	}
	s := r.settings()
	act := plan(f, s, now, r.rand())
	if !act.nextProbe.IsZero() {
		a.probeAt = act.nextProbe
	}
	a.setStatus(func(st *Status) { publish(st, f, act, s, now) })
	log = log.With(rotationID(f.snap.State.RotationID))
	if act.clearPending != "" || act.resume {
		return r.settle(ctx, a, f, act, log)
	}
	return r.perform(ctx, a, f, act, log)
}

// settle finishes or clears a pending version, as the plan says; the next pass plans on the
// labels this leaves.
func (r *Rotator) settle(ctx context.Context, a *appState, f facts, act action, log *zap.Logger) time.Time {
	now := r.clock.Now()
	if act.clearPending != "" {
		log.Info("clearing a pending version that is not newer than the current secret", zap.String("pending_version_id", act.clearPending))
		if err := r.vault.ClearPendingOn(ctx, f.snap, act.clearPending, false); err != nil {
			log.Warn("clearing a stale pending version", zap.Error(err))
			return act.wakeAt
		}
		return now
	}
	log.Info("resuming an interrupted rotation from its pending version", zap.String("pending_version_id", f.snap.Pending.ID))
	switch r.promoteNow(ctx, a, f, *f.snap.Pending, true, log) {
	case verifyRetry:
		// LWA or Secrets Manager is failing: back off, so an outage costs a dozen calls an
		// hour, not one every few seconds.
		a.resumeFailures++
		return now.Add(backoff.Equal(a.resumeFailures, vaultRetryMin, vaultRetryMax, r.rand))
	case verifyPromoted:
		a.resumeFailures = 0
		return time.Unix(0, a.nextAt.Load()) // replan set it from what the promotion wrote
	}
	a.resumeFailures = 0
	return now
}

// perform carries out the scheduler's part of a plan: finished or timed-out bookkeeping, request
// clean-up, the probe, the rotate call.
func (r *Rotator) perform(ctx context.Context, a *appState, f facts, act action, log *zap.Logger) time.Time {
	st, ok := r.bookkeep(ctx, a, f, act, log)
	if !ok {
		return r.clock.Now().Add(vaultRetryMin)
	}
	if act.invalidRequest {
		log.Warn("removing a rotation request whose " + vault.TagRequestAt + " tag is not an RFC 3339 time; ask again with lwa-rotator rotate")
	}
	if act.clearRequest {
		if err := r.vault.ClearRequest(ctx, a.app.Load().SecretID); err != nil {
			log.Warn("removing a served rotation request", zap.Error(err))
		} else {
			st.ServedRequest, st.Request = time.Time{}, vault.RotationRequest{}
		}
	}
	if act.noExpiry {
		log.Warn("current secret has no known expiry time; waiting for an expiry notice or a manual rotation")
	}
	if act.probe {
		r.probe(ctx, a, f, log)
	}
	if !act.request {
		return act.wakeAt
	}
	return r.request(ctx, a, f, st, act)
}

// bookkeep saves what a finished rotation or the watchdog leaves in the tags, and returns the
// state the vault then holds; false when the save failed.
func (r *Rotator) bookkeep(ctx context.Context, a *appState, f facts, act action, log *zap.Logger) (vault.RotationState, bool) {
	app, st := *a.app.Load(), f.snap.State
	switch {
	case act.finished:
		if err := r.vault.SaveChanges(ctx, app.SecretID, st, *act.save); err != nil {
			log.Warn("clearing the bookkeeping of a finished rotation; will retry", zap.Error(err))
			return st, false
		}
		r.promotionSeen(a, f.snap.Current)
		a.setStatus(func(s *Status) { s.InFlightSince = time.Time{} }) // publish showed the tags before this save
		log.Info("the latest rotate call's secret is already AWSCURRENT; rotation state cleared", zap.String("version_id", f.snap.Current.ID))
	case act.watchdog:
		r.obs.Rotation(app.Name, ResultTimeout)
		a.setStatus(func(s *Status) { s.InFlightSince = time.Time{} })
		log.Error("no new secret arrived within the await deadline; requesting again while the old secret still works",
			zap.Time("requested_at", st.RequestedAt), zap.Int("attempts", act.save.Attempts), zap.Time("next_attempt_at", act.save.NextAttemptAt))
		if err := r.vault.SaveChanges(ctx, app.SecretID, st, *act.save); err != nil {
			log.Error("saving rotation state", zap.Error(err))
			return st, false
		}
	default:
		return st, true
	}
	return *act.save, true
}

// request saves the intent, then asks Amazon for a new secret. The intent is saved before the
// call, so a process killed right after a successful call waits for the secret instead of
// rotating a second time.
func (r *Rotator) request(ctx context.Context, a *appState, f facts, st vault.RotationState, act action) time.Time {
	app, now := *a.app.Load(), r.clock.Now()
	in := act.intent
	if in.RotationID == "" {
		in.RotationID = newRotationID()
	}
	log := r.log.With(zap.String("app", app.Name), zap.String("secret_id", app.SecretID), rotationID(in.RotationID))
	if wait, ok := r.saveIntent(ctx, a, st, in, log); !ok {
		return now.Add(wait)
	}
	tok, err := r.lwa.Token(ctx, app.ClientID, f.snap.Current.Record.ClientSecret)
	noteValidity(a, err, now) // the rotate request's token call is that day's probe too
	if err != nil {
		// No rotate call was made: the operator's request stays pending for the retry.
		return r.requestFailed(ctx, a, in, failedBeforeCall(in, st), err, "minting an LWA token with the current secret", log)
	}
	reqID, err := r.spapi.RotateClientSecret(ctx, app.ClientID, app.Region, tok.AccessToken)
	if err != nil {
		after := in
		if spapi.Refused(err) {
			// Amazon refused it outright: nothing was minted, and the request is still owed.
			after = failedBeforeCall(in, st)
		}
		return r.requestFailed(ctx, a, in, after, err, "calling rotateApplicationClientSecret", log)
	}
	r.checkpoint(StepRotateCalled)
	r.obs.Rotation(app.Name, ResultRequested)
	log.Info("rotation accepted; awaiting the new secret on SQS", zap.String("request_id", reqID))
	if st.RequestPending() {
		a.setStatus(func(s *Status) { s.RequestedAt = time.Time{} })
		if err := r.vault.ClearRequest(ctx, app.SecretID); err != nil {
			// Served is saved, so the request is not acted on twice; a later pass removes it.
			log.Warn("removing the served rotation request; will retry", zap.Error(err))
		}
	}
	return act.wakeAt
}

// saveIntent writes the intent before the rotate call; on failure it says how long to wait.
func (r *Rotator) saveIntent(ctx context.Context, a *appState, st, in vault.RotationState, log *zap.Logger) (time.Duration, bool) {
	if err := r.vault.SaveChanges(ctx, a.app.Load().SecretID, st, in); err != nil {
		if errors.Is(err, vault.ErrNoTagRoom) {
			// Retrying cannot help until someone removes tags: say so once an hour, not in a loop.
			a.setStatus(func(s *Status) { s.LastError = err.Error() })
			log.Error("saving rotation intent: no room for the daemon's tags; not rotating", zap.Error(err))
			return idleRecheck, false
		}
		log.Error("saving rotation intent; not rotating yet", zap.Error(err))
		return backoff.Equal(1, vaultRetryMin, vaultRetryMax, r.rand), false
	}
	now := r.clock.Now()
	a.setStatus(func(s *Status) { s.InFlightSince = now })
	r.checkpoint(StepIntentSaved)
	fields := []zap.Field{zap.Bool("manual", a.manual.Load()), zap.Int("attempts", in.Attempts)}
	if st.RequestPending() {
		fields = append(fields, zap.Time("request_at", st.Request.At), zap.String("request_by", st.Request.By))
	}
	log.Info("rotation due; requesting a new client secret", fields...)
	return 0, true
}

// failedBeforeCall undoes the intent's record of a call that never reached Amazon.
func failedBeforeCall(in, before vault.RotationState) vault.RotationState {
	in.LastCallAt, in.ServedRequest = before.LastCallAt, before.ServedRequest
	return in
}

// requestFailed counts and saves a failed request: saved holds what the vault has now (the
// intent), st what it should hold before the next attempt is planned.
func (r *Rotator) requestFailed(ctx context.Context, a *appState, saved, st vault.RotationState, err error, doing string, log *zap.Logger) time.Time {
	app, now := *a.app.Load(), r.clock.Now()
	s := r.settings()
	result, st := afterFailedRequest(st, err, now, s, r.rand())
	r.obs.Rotation(app.Name, result)
	a.setStatus(func(x *Status) {
		x.InFlightSince = time.Time{}
		x.NextRotation = st.NextAttemptAt
	})
	switch result {
	case ResultCurrentInvalid:
		log.Error("LWA rejects the stored current secret: the application may already be locked out; restore a working secret (see the runbook)", zap.Error(err))
	case ResultNotEnrolled:
		log.Error("Amazon says no Application Client New Secret queue is registered; register it in the Developer Console", zap.Error(err))
	default:
		log.Warn(doing+" failed; will retry", zap.Error(err))
	}
	if serr := r.vault.SaveChanges(ctx, app.SecretID, saved, st); serr != nil {
		// The saved intent stays; on restart the daemon waits out the await deadline, then retries.
		log.Error("saving rotation state after a failed request", zap.Error(serr))
	}
	return st.NextAttemptAt
}

// afterFailedRequest is the pure part of a failed request: its result, and the state with the
// next attempt planned (no sooner than Amazon's Retry-After).
func afterFailedRequest(st vault.RotationState, err error, now time.Time, s Settings, jitter float64) (Result, vault.RotationState) {
	result := ResultRequestFailed
	switch {
	case errors.Is(err, spapi.ErrInvalidClient):
		result = ResultCurrentInvalid
	case errors.Is(err, spapi.ErrNotEnrolled):
		result = ResultNotEnrolled
	}
	st.RequestedAt = time.Time{}
	st.Attempts++
	st.NextAttemptAt = now.Add(backoff.Equal(st.Attempts, s.RetryMin, s.RetryMax, func() float64 { return jitter }))
	var apiErr *spapi.Error
	if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
		st.NextAttemptAt = later(st.NextAttemptAt, now.Add(apiErr.RetryAfter))
	}
	return result, st
}

// promotionSeen counts a promotion this process finds done (a crash, a lost answer, another
// replica), and tells the consumers' hook, unless it did both itself. The caller holds a.work.
func (r *Rotator) promotionSeen(a *appState, cur vault.Version) {
	if a.counted == cur.ID {
		return
	}
	a.counted = cur.ID
	app, now := *a.app.Load(), r.clock.Now()
	a.setStatus(func(s *Status) {
		s.LastSuccess, s.CurrentExpiry, s.PreviousExpiry, s.InFlightSince = now, cur.Record.ExpiresAt, cur.Record.PreviousExpiresAt, time.Time{}
	})
	r.obs.Rotation(app.Name, ResultSuccess)
	r.promoted(Promotion{App: app.Name, SecretID: app.SecretID, VersionID: cur.ID, ExpiresAt: cur.Record.ExpiresAt,
		PreviousExpiresAt: cur.Record.PreviousExpiresAt, At: now})
}

// read takes the application's snapshot. The caller holds a.work.
func (r *Rotator) read(ctx context.Context, a *appState, app App) (facts, error) {
	snap, err := r.vault.Read(ctx, app.SecretID)
	if err != nil {
		return facts{}, err
	}
	if id := snap.Current.ID; a.knownCurrent != "" && id != a.knownCurrent && !vault.StagedByDaemon(id) {
		// Someone else moved AWSCURRENT (a value stored by hand after a rotation in the Developer
		// Console looks like this; another replica's promotion carries a notification's token):
		// count it, say so, and prove the new secret at once.
		a.setStatus(func(s *Status) { s.ExternalChanges++ })
		r.log.Warn("AWSCURRENT moved to a version this daemon did not promote; proving it with LWA now",
			zap.String("app", app.Name), zap.String("secret_id", app.SecretID), zap.String("version_id", id),
			zap.String("previous_version_id", a.knownCurrent))
		a.probeAt = r.clock.Now()
	}
	a.knownCurrent = snap.Current.ID
	return facts{app: app, snap: snap, manual: a.manual.Load(), probeAt: a.probeAt}, nil
}

// probe proves AWSCURRENT with one LWA token call. A failure that is not LWA's verdict (LWA
// down) is tried again within the hour, never in a loop.
func (r *Rotator) probe(ctx context.Context, a *appState, f facts, log *zap.Logger) {
	now := r.clock.Now()
	_, err := r.lwa.Token(ctx, f.app.ClientID, f.snap.Current.Record.ClientSecret)
	noteValidity(a, err, now)
	switch {
	case err == nil:
		log.Debug("probe: LWA accepts the current secret", zap.String("version_id", f.snap.Current.ID))
	case rejectsSecret(err):
		log.Error("probe: LWA rejects the stored current secret: the application may already be locked out; restore a working secret (see the runbook)",
			zap.String("version_id", f.snap.Current.ID), zap.Error(err))
	default:
		a.probeAt = earlier(a.probeAt, now.Add(time.Hour))
		log.Warn("probe: could not reach LWA to prove the current secret; trying again within the hour", zap.Error(err))
	}
}

// noteValidity records what a token call with AWSCURRENT said of it; a failure that is not a
// verdict leaves the last one standing.
func noteValidity(a *appState, err error, now time.Time) {
	switch {
	case err == nil:
		a.setStatus(func(s *Status) { s.CurrentValid, s.LastProbe = Valid, now })
	case rejectsSecret(err):
		a.setStatus(func(s *Status) { s.CurrentValid, s.LastProbe = Invalid, now })
	}
}

// publish writes what a plan knows into the status.
func publish(s *Status, f facts, act action, set Settings, now time.Time) {
	switch {
	case f.snap.Pending == nil:
		s.PendingSince = time.Time{}
	case s.PendingSince.IsZero():
		s.PendingSince = now
	}
	st := f.snap.State
	s.Known, s.ConsecutiveFailures, s.LastError = true, 0, ""
	s.Phase = act.phase
	s.CurrentExpiry = act.expiry
	s.PreviousExpiry = f.snap.Current.Record.PreviousExpiresAt
	s.InFlightSince = st.RequestedAt
	s.NextRotation = later(act.planned, st.NextAttemptAt)
	s.RequestedAt = time.Time{}
	if st.RequestPending() {
		s.RequestedAt = st.Request.At
	}
	s.Canary, s.CanaryInterval = f.app.Canary, 0
	if f.app.Canary {
		s.CanaryInterval = set.CanaryEvery
	}
	s.CurrentMintedAt = time.Time{}
	if exp := f.snap.Current.Record.ExpiresAt; !exp.IsZero() {
		s.CurrentMintedAt = exp.Add(-spapi.SecretLifetime)
	}
}

func (r *Rotator) noteFailure(a *appState, err error) int {
	var n int
	a.setStatus(func(s *Status) {
		s.ConsecutiveFailures++
		s.LastError = "vault: " + err.Error()
		n = s.ConsecutiveFailures
	})
	return n
}

// rotationID tags a log line with the rotation it belongs to; lines outside any rotation get none.
func rotationID(id string) zap.Field {
	if id == "" {
		return zap.Skip()
	}
	return zap.String("rotation_id", id)
}

func newRotationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
