package rotator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// vaultRetryMin and vaultRetryMax bound how soon a tick that could not read the vault runs again.
const (
	vaultRetryMin = 5 * time.Second
	vaultRetryMax = 5 * time.Minute
	// idleRecheck is how often an application with nothing planned is looked at again, so a
	// secret changed behind the daemon's back is noticed.
	idleRecheck = time.Hour
)

// tick brings one application up to date with its vault and acts if something is due. It returns
// when it wants to run again.
func (r *Rotator) tick(ctx context.Context, a *appState) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := r.clock.Now()
	renewBefore, awaitDeadline := r.timings()
	log := r.log.With(zap.String("app", a.app.Name), zap.String("secret_id", a.app.SecretID))

	cur, st, err := r.readVault(ctx, a)
	pendingLeft := false
	if err == nil {
		if pend, ok, perr := r.vault.Pending(ctx, a.app.SecretID); perr != nil {
			err = perr
		} else if ok {
			// A crash after staging, or a verification that failed transiently, left AWSPENDING
			// behind: finish or clear it before anything else.
			pendingLeft = !r.resumePending(ctx, a, cur, pend, log.With(rotationID(st.RotationID)))
			cur, st, err = r.readVault(ctx, a)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return now // shutting down: not a vault failure
		}
		fails := r.noteFailure(a, err)
		log.Error("reading the vault", zap.Error(err), zap.Int("consecutive_failures", fails))
		return now.Add(Backoff(fails, vaultRetryMin, vaultRetryMax, r.rand))
	}
	base := log
	log = log.With(rotationID(st.RotationID))

	expiry := vault.EffectiveExpiry(cur.Record, st)
	var planned time.Time
	if !expiry.IsZero() {
		planned = expiry.Add(-renewBefore)
	}
	r.setStatus(a, func(s *Status) {
		s.Known = true
		s.ConsecutiveFailures = 0
		s.LastError = ""
		s.CurrentExpiry = expiry
		s.PreviousExpiry = cur.Record.PreviousExpiresAt
		s.InFlightSince = st.RequestedAt
		s.NextRotation = later(planned, st.NextAttemptAt)
		s.RequestedAt = time.Time{}
		if st.RequestPending() {
			s.RequestedAt = st.Request.At
		}
	})

	if pendingLeft {
		// The new secret is here but not yet verified: no watchdog, and above all no second
		// rotate call, which would shorten the life of the secret we are about to promote.
		return now.Add(Backoff(1, vaultRetryMin, vaultRetryMax, r.rand))
	}
	if !st.RequestedAt.IsZero() {
		deadline := st.RequestedAt.Add(awaitDeadline)
		if now.Before(deadline) {
			return deadline
		}
		st.Attempts++
		st.NextAttemptAt = now.Add(r.backoff(st.Attempts))
		requestedAt := st.RequestedAt
		st.RequestedAt = time.Time{}
		r.obs.Rotation(a.app.Name, ResultTimeout)
		r.setStatus(a, func(s *Status) { s.InFlightSince = time.Time{} })
		log.Error("no new secret arrived within the await deadline; requesting again while the old secret still works",
			zap.Time("requested_at", requestedAt), zap.Duration("await_deadline", awaitDeadline),
			zap.Int("attempts", st.Attempts), zap.Time("next_attempt_at", st.NextAttemptAt))
		if err := r.vault.SaveState(ctx, a.app.SecretID, st); err != nil {
			log.Error("saving rotation state", zap.Error(err))
			return now.Add(vaultRetryMin)
		}
	}

	if st.Request.Invalid {
		log.Warn("removing a rotation request whose " + vault.TagRequestAt + " tag is not an RFC 3339 time; ask again with lwa-rotator rotate")
	}
	if (st.RequestServed() && st.RequestedAt.IsZero()) || st.Request.Invalid {
		// A rotate call was made for the request but the process stopped before removing it, or
		// the request cannot be read.
		if err := r.vault.ClearRequest(ctx, a.app.SecretID); err != nil {
			log.Warn("removing a served rotation request", zap.Error(err))
		} else {
			st.ServedRequest, st.Request = time.Time{}, vault.RotationRequest{}
		}
	}

	// owed: the current secret predates our latest rotate call, whose secret has not landed.
	owed := !answered(st, cur.Record)
	// An operator's request (lwa-rotator rotate) is a SIGUSR1 for this application, kept in the
	// vault so that it survives restarts and reaches whichever replica ticks first.
	due := a.manual.Load() || st.RequestPending() || owed || (!planned.IsZero() && !now.Before(planned))
	switch {
	case !due && planned.IsZero():
		log.Warn("current secret has no known expiry time; waiting for an expiry notice or a manual rotation")
		return now.Add(idleRecheck)
	case !due:
		return earlier(planned, now.Add(idleRecheck))
	case now.Before(st.NextAttemptAt):
		return st.NextAttemptAt
	}
	return r.request(ctx, a, cur, st, base, awaitDeadline)
}

func (r *Rotator) readVault(ctx context.Context, a *appState) (vault.Version, vault.RotationState, error) {
	cur, err := r.vault.Current(ctx, a.app.SecretID)
	if err != nil {
		return vault.Version{}, vault.RotationState{}, err
	}
	st, err := r.vault.LoadState(ctx, a.app.SecretID)
	return cur, st, err
}

// request asks Amazon for a new secret and returns when to look again. The intent is saved before
// the call, so a process killed right after a successful call waits for the secret instead of
// rotating a second time.
func (r *Rotator) request(ctx context.Context, a *appState, cur vault.Version, st vault.RotationState, log *zap.Logger, awaitDeadline time.Duration) time.Time {
	now := r.clock.Now()
	if st.RotationID == "" {
		st.RotationID = newRotationID()
	}
	log = log.With(rotationID(st.RotationID))
	prevCall, prevServed := st.LastCallAt, st.ServedRequest
	forRequest := st.RequestPending()
	if forRequest {
		// Saved with the intent, in one TagResource call: a restart sees the request served and
		// the rotation in flight together, never one without the other.
		st.ServedRequest = st.Request.At
	}
	st.RequestedAt, st.LastCallAt = now, now
	if err := r.vault.SaveState(ctx, a.app.SecretID, st); err != nil {
		if errors.Is(err, vault.ErrNoTagRoom) {
			// Retrying cannot help until someone removes tags: say so once an hour, not in a loop.
			r.setStatus(a, func(s *Status) { s.LastError = err.Error() })
			log.Error("saving rotation intent: no room for the daemon's tags; not rotating", zap.Error(err))
			return now.Add(idleRecheck)
		}
		log.Error("saving rotation intent; not rotating yet", zap.Error(err))
		return now.Add(Backoff(1, vaultRetryMin, vaultRetryMax, r.rand))
	}
	r.setStatus(a, func(s *Status) { s.InFlightSince = now })
	r.checkpoint(StepIntentSaved)
	fields := []zap.Field{zap.Bool("manual", a.manual.Load()), zap.Int("attempts", st.Attempts)}
	if forRequest {
		fields = append(fields, zap.Time("request_at", st.Request.At), zap.String("request_by", st.Request.By))
	}
	log.Info("rotation due; requesting a new client secret", fields...)

	tok, err := r.lwa.Token(ctx, a.app.ClientID, cur.Record.ClientSecret)
	if err != nil {
		// No rotate call was made: the operator's request stays pending for the retry.
		st.LastCallAt, st.ServedRequest = prevCall, prevServed
		return r.requestFailed(ctx, a, st, err, "minting an LWA token with the current secret", log)
	}
	reqID, err := r.spapi.RotateClientSecret(ctx, a.app.ClientID, a.app.Region, tok.AccessToken)
	if err != nil {
		if spapi.Refused(err) {
			// Amazon refused it outright: nothing was minted, and the request is still owed.
			st.LastCallAt, st.ServedRequest = prevCall, prevServed
		}
		return r.requestFailed(ctx, a, st, err, "calling rotateApplicationClientSecret", log)
	}
	r.checkpoint(StepRotateCalled)
	r.obs.Rotation(a.app.Name, ResultRequested)
	log.Info("rotation accepted; awaiting the new secret on SQS", zap.String("request_id", reqID))
	if forRequest {
		r.setStatus(a, func(s *Status) { s.RequestedAt = time.Time{} })
		if err := r.vault.ClearRequest(ctx, a.app.SecretID); err != nil {
			// Served is saved, so the request is not acted on twice; a later tick removes it.
			log.Warn("removing the served rotation request; will retry", zap.Error(err))
		}
	}
	return now.Add(awaitDeadline)
}

func (r *Rotator) requestFailed(ctx context.Context, a *appState, st vault.RotationState, err error, doing string, log *zap.Logger) time.Time {
	now := r.clock.Now()
	result := ResultRequestFailed
	switch {
	case errors.Is(err, spapi.ErrInvalidClient):
		result = ResultCurrentInvalid
	case errors.Is(err, spapi.ErrNotEnrolled):
		result = ResultNotEnrolled
	}
	st.RequestedAt = time.Time{}
	st.Attempts++
	st.NextAttemptAt = now.Add(r.backoff(st.Attempts))
	var apiErr *spapi.Error
	if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
		st.NextAttemptAt = later(st.NextAttemptAt, now.Add(apiErr.RetryAfter))
	}
	r.obs.Rotation(a.app.Name, result)
	r.setStatus(a, func(s *Status) {
		s.InFlightSince = time.Time{}
		s.NextRotation = st.NextAttemptAt
	})
	switch result {
	case ResultCurrentInvalid:
		log.Error("LWA rejects the stored current secret: the application may already be locked out; restore a working secret (see the runbook)", zap.Error(err))
	case ResultNotEnrolled:
		log.Error("Amazon says no Application Client New Secret queue is registered; register it in the Developer Console", zap.Error(err))
	default:
		log.Warn(doing+" failed; will retry", zap.Error(err))
	}
	if serr := r.vault.SaveState(ctx, a.app.SecretID, st); serr != nil {
		// The saved intent stays; on restart the daemon waits out the await deadline, then retries.
		log.Error("saving rotation state after a failed request", zap.Error(serr))
	}
	return st.NextAttemptAt
}

func (r *Rotator) noteFailure(a *appState, err error) int {
	var n int
	r.setStatus(a, func(s *Status) {
		s.ConsecutiveFailures++
		s.LastError = "vault: " + err.Error()
		n = s.ConsecutiveFailures
	})
	return n
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func newRotationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
