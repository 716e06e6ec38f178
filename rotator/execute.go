package rotator

import (
	"context"
	"errors"
	"fmt"
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
	r.noteCurrent(a, f, act.externalChange, act.probe)
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
	st, wake, ok := r.bookkeep(ctx, a, f, act, log)
	if !ok {
		if wake.IsZero() {
			wake = r.clock.Now().Add(vaultRetryMin)
		}
		return wake
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
		st = r.probe(ctx, a, f, st, log)
	}
	if !act.request {
		return act.wakeAt
	}
	return r.request(ctx, a, f, st, act)
}

// bookkeep saves what a finished rotation or the watchdog leaves in the tags, and returns the
// state the vault then holds; false when the save failed or another replica holds the
// watchdog's claim (then with when to look again).
func (r *Rotator) bookkeep(ctx context.Context, a *appState, f facts, act action, log *zap.Logger) (vault.RotationState, time.Time, bool) {
	app, st := *a.app.Load(), f.snap.State
	switch {
	case act.finished:
		if err := r.vault.SaveChanges(ctx, app.SecretID, st, *act.save); err != nil {
			log.Warn("clearing the bookkeeping of a finished rotation; will retry", zap.Error(err))
			return st, time.Time{}, false
		}
		r.promotionSeen(a, f.snap.Current)
		a.setStatus(func(s *Status) { s.InFlightSince = time.Time{} }) // publish showed the tags before this save
		log.Info("the latest rotate call's secret is already AWSCURRENT; rotation state cleared", zap.String("version_id", f.snap.Current.ID))
	case act.watchdog:
		// Claimed like a rotate call: a replica whose read is older than another's retry would
		// otherwise remove that retry's record of its call.
		if _, won, wake := r.claim(ctx, a, f, act, st.RotationID, log); !won {
			return st, wake, false
		}
		err := r.vault.SaveChanges(ctx, app.SecretID, st, *act.save)
		a.setStatus(func(s *Status) { s.ClaimHeldUntil = time.Time{} })
		if err != nil {
			log.Error("saving rotation state", zap.Error(err))
			return st, time.Time{}, false
		}
		r.obs.Rotation(app.Name, ResultTimeout)
		a.setStatus(func(s *Status) { s.InFlightSince = time.Time{} })
		log.Error("no new secret arrived within the await deadline; requesting again while the old secret still works",
			zap.Time("requested_at", st.RequestedAt), zap.Int("attempts", act.save.Attempts), zap.Time("next_attempt_at", act.save.NextAttemptAt))
	default:
		return st, time.Time{}, true
	}
	return *act.save, time.Time{}, true
}

// request saves the intent, then asks Amazon for a new secret. The intent is saved before the
// call, so a process killed right after a successful call waits for the secret instead of
// rotating a second time.
func (r *Rotator) request(ctx context.Context, a *appState, f facts, st vault.RotationState, act action) time.Time {
	app, now := *a.app.Load(), r.clock.Now()
	signal := a.manualAt.Load() // a SIGUSR1 that arrives from here on asks for another rotation
	in := act.intent
	if in.RotationID == "" {
		in.RotationID = newRotationID(r.rand)
	}
	log := r.log.With(zap.String("app", app.Name), zap.String("secret_id", app.SecretID), rotationID(in.RotationID))
	c, won, wake := r.claim(ctx, a, f, act, in.RotationID, log)
	if !won {
		return wake
	}
	in.RotationID = c.RotationID
	log = r.log.With(zap.String("app", app.Name), zap.String("secret_id", app.SecretID), rotationID(in.RotationID))
	if err := r.vault.SaveChanges(ctx, app.SecretID, st, in); err != nil {
		wait, noRoom := afterIntentFailure(err, r.rand())
		if noRoom {
			a.setStatus(func(s *Status) { s.LastError = err.Error() })
			log.Error("saving rotation intent: no room for the daemon's tags; not rotating", zap.Error(err))
		} else {
			log.Error("saving rotation intent; not rotating yet", zap.Error(err))
		}
		return now.Add(wait)
	}
	r.republish(a, f, in)
	r.checkpoint(StepIntentSaved)
	r.sayRequesting(f.manual, st, in, log)
	var out requestOutcome
	if !callable(c, r.clock.Now(), r.settings()) {
		// Too late to call on this claim: another replica may be taking the rotation over.
		out.fenced = true
		return r.requestFailed(ctx, a, f, in, st, out, "making the rotate call within the claim's time", log)
	}
	tok, err := r.lwa.Token(ctx, app.ClientID, f.snap.Current.Record.ClientSecret)
	noteValidity(a, err, now) // the rotate request's token call is that day's probe too
	if err != nil {
		out.tokenErr = err
		return r.requestFailed(ctx, a, f, in, st, out, "minting an LWA token with the current secret", log)
	}
	reqID, err := r.spapi.RotateClientSecret(ctx, app.ClientID, app.Region, tok.AccessToken)
	if err != nil {
		out.callErr = err
		return r.requestFailed(ctx, a, f, in, st, out, "calling rotateApplicationClientSecret", log)
	}
	r.checkpoint(StepRotateCalled)
	a.manualAt.CompareAndSwap(signal, 0)                            // this call answers the SIGUSR1 it was made for
	a.setStatus(func(s *Status) { s.ClaimHeldUntil = time.Time{} }) // the rotation is requested: the claim has done its work
	r.obs.Rotation(app.Name, ResultRequested)
	if act.outsideWindow {
		a.setStatus(func(s *Status) { s.WindowOverrides++ })
		log.Warn("rotated outside the rotation window: waiting for it would have left less than its safety margin before the secret expires",
			zap.Time("expires_at", act.expiry), zap.String("window", app.Window.String()))
	}
	log.Info("rotation accepted; awaiting the new secret on SQS", zap.String("request_id", reqID))
	if RequestPending(st) {
		if err := r.vault.ClearRequest(ctx, app.SecretID); err != nil {
			// Served is saved, so the request is not acted on twice; a later pass removes it.
			log.Warn("removing the served rotation request; will retry", zap.Error(err))
		}
	}
	return act.wakeAt
}

// claim wins the due rotation for this process before its rotate call or the watchdog's write,
// unless the plan found a claim of its own still usable. Whatever the put's answer, the decision judges the claim that
// holds the rotation now: this process's, usable, and the call goes ahead; otherwise the status
// says whose it is and the pass ends when the decision says to look again.
func (r *Rotator) claim(ctx context.Context, a *appState, f facts, act action, id string, log *zap.Logger) (vault.Claim, bool, time.Time) {
	now, set := r.clock.Now(), r.settings()
	if act.claim != nil {
		a.setStatus(func(s *Status) { s.ClaimHeldUntil = act.claim.Until })
		return *act.claim, true, time.Time{}
	}
	c, err := r.vault.ClaimOn(ctx, f.snap, vault.Claim{Holder: r.holder, RotationID: id, ClaimedAt: now, Until: now.Add(set.claimLease())})
	if err != nil {
		wait, _ := afterIntentFailure(err, r.rand())
		log.Error("claiming the due rotation; not rotating yet", zap.Error(err))
		return vault.Claim{}, false, now.Add(wait)
	}
	f.snap.Claim = &c
	now = r.clock.Now()
	next := plan(f, set, now, r.rand())
	if (next.request || next.watchdog) && next.claim != nil {
		a.setStatus(func(s *Status) { s.ClaimHeldUntil = c.Until })
		r.checkpoint(StepClaimed)
		log.Debug("claimed the due rotation", zap.String("claim_version_id", c.VersionID), zap.Time("claim_lapses_at", c.Until))
		return *next.claim, true, time.Time{}
	}
	a.setStatus(func(x *Status) { publish(x, f, next, set, now) })
	log.Info("the due rotation is claimed by another replica, or too long ago to call on; waiting for the claim to be used or to lapse",
		zap.String("holder", c.Holder), zap.Time("claim_lapses_at", c.Until))
	return vault.Claim{}, false, next.wakeAt
}

// callable: the holder may still make its rotate call on claim c at now.
func callable(c vault.Claim, now time.Time, s Settings) bool {
	return now.Before(c.ClaimedAt.Add(s.claimCallBy()))
}

// republish publishes the decision on f with the state the executor has just written, so that
// the status and the next-rotation metric tell what the daemon will do next at once, not after
// its next pass. Only the tags changed: the labels and records in f are still what the vault holds.
func (r *Rotator) republish(a *appState, f facts, st vault.RotationState) {
	f.snap.State = st
	f.manual = a.manual(f.snap.Current.Record)
	now, s := r.clock.Now(), r.settings()
	act := plan(f, s, now, r.rand())
	a.setStatus(func(x *Status) { publish(x, f, act, s, now) })
}

func (r *Rotator) sayRequesting(manual bool, st, in vault.RotationState, log *zap.Logger) {
	fields := []zap.Field{zap.Bool("manual", manual), zap.Int("attempts", in.Attempts)}
	if RequestPending(st) {
		fields = append(fields, zap.Time("request_at", st.Request.At), zap.String("request_by", st.Request.By))
	}
	log.Info("rotation due; requesting a new client secret", fields...)
}

// afterIntentFailure is how long to wait after the intent could not be saved, and whether the
// cause is a secret with no room for the daemon's tags: retrying cannot help until someone
// removes tags, so that is said once an hour, not in a loop.
func afterIntentFailure(err error, jitter float64) (time.Duration, bool) {
	if errors.Is(err, vault.ErrNoTagRoom) {
		return idleRecheck, true
	}
	return backoff.Equal(1, vaultRetryMin, vaultRetryMax, func() float64 { return jitter }), false
}

// requestOutcome is what became of a rotate request that failed, as the executor saw it.
type requestOutcome struct {
	tokenErr error // no token could be minted with the current secret: no call was made
	callErr  error // the rotate call failed
	fenced   bool  // the claim's time to call ran out before the call: no call was made
}

// errClaimLapsed is a fenced request's error.
var errClaimLapsed = errors.New("the claim's time to make the call ran out first")

func (o requestOutcome) err() error {
	switch {
	case o.tokenErr != nil:
		return o.tokenErr
	case o.fenced:
		return errClaimLapsed
	}
	return o.callErr
}

// requestFailed counts and saves a failed request: saved holds what the vault has now (the
// intent), before what it held before the intent.
func (r *Rotator) requestFailed(ctx context.Context, a *appState, f facts, saved, before vault.RotationState, out requestOutcome, doing string, log *zap.Logger) time.Time {
	app, now := *a.app.Load(), r.clock.Now()
	result, st := afterFailedRequest(saved, before, out, now, r.settings(), r.rand())
	a.setStatus(func(s *Status) { s.ClaimHeldUntil = time.Time{} })
	r.obs.Rotation(app.Name, result)
	r.republish(a, f, st)
	err := out.err()
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

// afterFailedRequest is the pure part of a failed request: its result, and the state to save
// with the next attempt planned (no sooner than Amazon's Retry-After). A call that never reached
// Amazon, or that Amazon refused outright, minted nothing: the intent's record of the call (and
// of a served operator request, which is still owed) is undone. Any other failure may have
// minted a secret, so the call stays on record and its secret is awaited as owed.
func afterFailedRequest(in, before vault.RotationState, out requestOutcome, now time.Time, s Settings, jitter float64) (Result, vault.RotationState) {
	err := out.err()
	st := in
	if out.tokenErr != nil || out.fenced || spapi.Refused(out.callErr) {
		st.LastCallAt, st.ServedRequest = before.LastCallAt, before.ServedRequest
	}
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
	return facts{app: app, snap: snap, manual: a.manual(snap.Current.Record), probeAt: a.probeAt, knownCurrent: a.knownCurrent, holder: r.holder}, nil
}

// noteCurrent performs what a decision says of the current version: an external change is
// counted and said, and the daemon remembers the version it has now seen. The caller holds a.work.
func (r *Rotator) noteCurrent(a *appState, f facts, external, probing bool) {
	if external {
		a.setStatus(func(s *Status) { s.ExternalChanges++ })
		if !probing {
			a.probeAt = r.clock.Now() // a pass that settles a pending version first probes on the next
		}
		r.log.Warn("AWSCURRENT moved to a version this daemon did not promote; proving it with LWA now",
			zap.String("app", f.app.Name), zap.String("secret_id", f.app.SecretID), zap.String("version_id", f.snap.Current.ID),
			zap.String("previous_version_id", a.knownCurrent))
	}
	a.knownCurrent = f.snap.Current.ID
}

// probe proves AWSCURRENT with one LWA token call, and records LWA's verdict in the vault (st is
// the state it holds), so that the other replicas take it as theirs. A failure that is not LWA's
// verdict (LWA down) is tried again within the hour, never in a loop.
func (r *Rotator) probe(ctx context.Context, a *appState, f facts, st vault.RotationState, log *zap.Logger) vault.RotationState {
	now := r.clock.Now()
	_, err := r.lwa.Token(ctx, f.app.ClientID, f.snap.Current.Record.ClientSecret)
	noteValidity(a, err, now)
	if err == nil || rejectsSecret(err) {
		next := st
		next.Probe = vault.Probe{At: now, Valid: err == nil, VersionID: f.snap.Current.ID}
		if serr := r.vault.SaveChanges(ctx, f.app.SecretID, st, next); serr != nil {
			log.Warn("recording the probe's verdict for the other replicas", zap.Error(serr))
		} else {
			st = next
		}
	}
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
	return st
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
	s.Reason = act.reason
	s.NextRotation = act.actAt
	s.RequestedAt = time.Time{}
	if RequestPending(st) {
		s.RequestedAt = st.Request.At
	}
	s.WindowOpensAt = act.windowOpensAt
	s.Canary, s.CanaryInterval = f.app.Canary, 0
	if f.app.Canary {
		s.CanaryInterval = set.CanaryEvery
	}
	if p := st.Probe; p.VersionID == f.snap.Current.ID && p.At.After(s.LastProbe) {
		// Another replica's probe is this one's too.
		s.LastProbe, s.CurrentValid = p.At, Invalid
		if p.Valid {
			s.CurrentValid = Valid
		}
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

// newRotationID draws a rotation's id from the rotator's randomness (Options.Rand), so a seeded
// simulation replays the same ids, and with them the same watchdog backoffs.
func newRotationID(rnd func() float64) string {
	return fmt.Sprintf("%08x%08x", uint32(rnd()*(1<<32)), uint32(rnd()*(1<<32)))
}
