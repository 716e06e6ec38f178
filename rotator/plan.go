package rotator

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/spapi-tools/lwa-rotator/internal/backoff"
	"github.com/spapi-tools/lwa-rotator/rotator/window"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
)

const (
	// vaultRetryMin and vaultRetryMax bound how soon a pass that could not finish runs again.
	vaultRetryMin = 5 * time.Second
	vaultRetryMax = 5 * time.Minute
	// idleRecheck is how often an application with nothing planned is looked at again, so a
	// secret changed behind the daemon's back is noticed.
	idleRecheck = time.Hour
	// callSlack absorbs the difference between a secret's mint time as its expiry minus the
	// lifetime gives it and the moment the rotate call was about to be made. Rotate calls are at
	// least a minute apart, so it cannot mistake one call's secret for the next one's.
	callSlack = 10 * time.Second
)

// facts is one application's rotation as the decisions see it: one vault snapshot plus the one
// fact kept in memory (a SIGUSR1 not yet answered by a promotion).
type facts struct {
	app    App
	snap   vault.Snapshot
	manual bool
	// probeAt is when AWSCURRENT is next proven with LWA; zero before the first pass.
	probeAt time.Time
	// knownCurrent is the AWSCURRENT version this process last saw or promoted ("" if none).
	knownCurrent string
	// holder names this process as a claim holder ("" for the operator commands, which never
	// hold one).
	holder string
}

// action is what one scheduler pass does for an application, in this order: settle a pending
// version (which ends the pass: the next pass plans on a new snapshot), count and save a
// watchdog timeout, remove a served or unreadable request, make the rotate call. The executor
// performs it and decides nothing.
type action struct {
	phase Phase
	// clearPending names a pending version to un-label: not newer than the current secret, or
	// for another client.
	clearPending string
	// resume: verify snap.Pending with LWA and promote it.
	resume bool
	// watchdog: no secret arrived within the await deadline; save carries the next attempt.
	// finished: the latest call's secret is current already; save carries the cleared state.
	watchdog, finished bool
	save               *vault.RotationState
	// clearRequest removes the request tags: served already, or invalidRequest (unparseable).
	clearRequest, invalidRequest bool
	// request: claim the rotation (unless claim is this process's own, still usable), save
	// intent, then mint a token with the current secret and call rotate.
	request bool
	intent  vault.RotationState
	claim   *vault.Claim
	// noExpiry: the current secret carries no expiry and no notice gave one.
	noExpiry bool
	// probe: prove AWSCURRENT with one LWA token call now. nextProbe is when to do so next.
	probe     bool
	nextProbe time.Time
	// expiry and planned feed the status; wakeAt is when the next pass is wanted.
	expiry, planned, wakeAt time.Time
	// reason says why the phase is what it is; actAt is when the daemon will next act on the
	// rotation itself (a rotate call, or finishing a pending secret): what status and the
	// next-rotation metric report. Zero when nothing is planned (no expiry known).
	reason Reason
	actAt  time.Time
	// externalChange: AWSCURRENT moved to a version this daemon did not promote.
	externalChange bool
	// windowOpensAt is when the rotation window a scheduled rotation waits for opens;
	// outsideWindow: a scheduled rotation starts outside the window, for safety.
	windowOpensAt time.Time
	outsideWindow bool
}

// plan decides one scheduler pass. It is pure: jitter in [0,1) is the only randomness (it
// spreads the probes and the pending retries, never a rotate call's time), and now the only clock.
func plan(f facts, s Settings, now time.Time, jitter float64) action {
	lease := f.snap.State.InHand
	if !lease.Live(now) || f.snap.Pending != nil {
		return planHeld(f, s, now, jitter)
	}
	// A replica holds the new secret but could not store it yet: nobody asks Amazon again, or
	// the secret on its way would be shortened and, once the newer one lands, thrown away.
	g := f
	g.snap.State.InHand = vault.Lease{}
	a := planHeld(g, s, now, jitter)
	if a.finished || !(a.request || a.watchdog || (!a.actAt.IsZero() && a.actAt.Before(lease.Until))) {
		return a
	}
	a.phase, a.reason = PhaseRequested, ReasonSecretInHand
	a.request, a.watchdog, a.save, a.claim, a.outsideWindow = false, false, nil, nil, false
	a.wakeAt = lease.Until
	if !a.probe && !a.nextProbe.IsZero() {
		a.wakeAt = earlier(a.wakeAt, a.nextProbe)
	}
	a.actAt = later(a.actAt, lease.Until)
	return a
}

// planHeld is plan once a secret in hand is accounted for.
func planHeld(f facts, s Settings, now time.Time, jitter float64) action {
	st, cur := f.snap.State, f.snap.Current.Record
	a := action{expiry: EffectiveExpiry(cur, st)}
	if !a.expiry.IsZero() {
		a.planned = a.expiry.Add(-s.RenewBefore)
	}
	if movedExternally(f) {
		// Prove a secret someone else made current at once.
		a.externalChange = true
		f.probeAt = now
	}
	if p := f.snap.Pending; p != nil {
		// A crash after staging, or a verification that failed transiently, left AWSPENDING
		// behind: finish or clear it before anything else. Above all no second rotate call,
		// which would shorten the life of the secret about to be promoted.
		a.phase = PhasePending
		a.wakeAt = now.Add(backoff.Equal(1, vaultRetryMin, vaultRetryMax, func() float64 { return jitter }))
		a.actAt = a.wakeAt
		if notNewer(p.Record, cur) || p.Record.ClientID != f.app.ClientID {
			a.clearPending, a.reason = p.ID, ReasonStalePending
		} else {
			a.resume, a.reason = true, ReasonNewSecretStaged
		}
		return a
	}
	if !st.RequestedAt.IsZero() && !st.LastCallAt.IsZero() && answered(st, cur) {
		// The latest call's secret is already current (a crash, or a lost answer, after its
		// promotion, or another replica promoted it): finish the bookkeeping instead of waiting
		// for the watchdog, which would count a timeout for a rotation that succeeded.
		after := stateAfterPromotion(st, cur)
		a.finished, a.save = true, &after
		st = after
		// The expiry a notice recorded was the old secret's: plan on the current one's.
		a.expiry, a.planned = EffectiveExpiry(cur, st), time.Time{}
		if !a.expiry.IsZero() {
			a.planned = a.expiry.Add(-s.RenewBefore)
		}
	}
	if !st.RequestedAt.IsZero() {
		if deadline := st.RequestedAt.Add(s.AwaitDeadline); now.Before(deadline) {
			// If no secret arrives the watchdog asks again: the moment that call is made is
			// known now, since its backoff is drawn from the rotation's own id.
			a.phase, a.wakeAt, a.reason = PhaseRequested, deadline, ReasonAwaitingSecret
			a.actAt = later(watchdogRetry(st, s), callAllowedAt(st, f.snap.Current.Record, s))
			return a
		}
		st = watchdogState(st, s, now)
		saved := st
		a.watchdog, a.save = true, &saved
	}
	a.invalidRequest = st.Request.Invalid
	if (RequestServed(st) && st.RequestedAt.IsZero()) || st.Request.Invalid {
		// A rotate call was made for the request but the process stopped before removing it, or
		// the request cannot be read.
		a.clearRequest = true
		st.ServedRequest, st.Request = time.Time{}, vault.RotationRequest{}
	}
	// An operator's request is a SIGUSR1 for this application, kept in the vault so that it
	// survives restarts and reaches whichever replica looks first.
	why, dueAt := dueReason(f, st, a.planned, s, now)
	notBefore := later(st.NextAttemptAt, callAllowedAt(st, f.snap.Current.Record, s))
	if scheduled(why, st) || (why == ReasonNone && !dueAt.IsZero()) {
		// Scheduled work starts only inside the rotation window, unless waiting would leave less
		// than its safety margin before the secret expires. A rotation under way (an attempt
		// made, a call's secret owed) and an operator's or SIGUSR1's do not wait.
		w := f.app.Window.StartAt(now, dueAt, a.expiry)
		switch {
		case why != ReasonNone && w.At.After(now):
			why, dueAt, a.windowOpensAt = ReasonNone, w.At, w.At
		case why == ReasonNone && w.At.After(dueAt):
			dueAt, a.windowOpensAt = w.At, w.At
		}
		a.outsideWindow = why != ReasonNone && w.Reason == window.SafetyOverride
	}
	switch {
	case why == ReasonNone && dueAt.IsZero():
		a.phase, a.noExpiry, a.wakeAt, a.reason = PhaseIdle, true, now.Add(idleRecheck), ReasonNoExpiry
	case why == ReasonNone:
		a.phase, a.wakeAt, a.reason = PhaseIdle, earlier(dueAt, now.Add(idleRecheck)), scheduledReason(f, dueAt, a.planned)
		if !a.windowOpensAt.IsZero() {
			a.reason = ReasonWindowWait
		}
		a.actAt = later(dueAt, notBefore)
	case now.Before(notBefore):
		a.phase, a.wakeAt, a.reason, a.actAt = PhaseBackingOff, notBefore, why, notBefore
	default:
		a.phase, a.request, a.wakeAt, a.reason, a.actAt = PhaseDue, true, now.Add(s.AwaitDeadline), why, now
		a.intent = intent(st, now)
	}
	if a.watchdog {
		a.phase = PhaseOverdue // the pass counts the timeout and saves the next attempt
	}
	if a.request || a.watchdog {
		judgeClaim(&a, f, s, now)
	}
	planProbe(&a, f, s, now, jitter)
	return a
}

// judgeClaim weighs a claim already made on the rotation this snapshot shows due, or overdue: a
// rotate call and the watchdog's write both change what the next replica reads, and a replica
// acting on a read older than another's write would undo it, so both are claimed. This process's
// own claim, still inside the time it may act in, is used as it stands. Another replica's (or
// this process's, too late to act on) is waited for until it lapses: the holder acts, and the
// snapshot after it shows the result. One that lapsed before the snapshot was read is taken over:
// the snapshot would show the holder's write had it made one, and the new claim, linked to the
// lapsed one, is again won by one replica only.
func judgeClaim(a *action, f facts, s Settings, now time.Time) {
	c := f.snap.Claim
	switch {
	case c == nil:
	case f.holder != "" && c.Holder == f.holder && now.Before(c.ClaimedAt.Add(s.claimCallBy())):
		own := *c
		a.claim = &own
		if c.RotationID != "" && a.request {
			a.intent.RotationID = c.RotationID
		}
	case !f.snap.ReadAt.Before(c.Until):
	default:
		a.phase, a.request, a.reason = PhaseRequested, false, ReasonClaimed
		a.wakeAt, a.actAt, a.outsideWindow = c.Until, c.Until, false
		if a.watchdog {
			a.watchdog, a.save = false, nil
		}
	}
}

// manualOwed: a SIGUSR1 that arrived at is still owed a rotation while the current secret was
// minted before it. The replica that got the signal need not be the one that promotes the
// secret, nor see the promotion happen: the secret it reads says whether it was answered. (The
// replica's own accepted call answers it too, whatever Amazon's clock says: see request.)
func manualOwed(at time.Time, cur vault.Record) bool {
	return cur.ExpiresAt.IsZero() || cur.ExpiresAt.Add(-spapi.SecretLifetime).Before(at)
}

// movedExternally: someone else moved AWSCURRENT since this process last looked (a value stored
// by hand after a rotation in the Developer Console looks like this; another replica's promotion
// carries a notification's token and does not).
func movedExternally(f facts) bool {
	id := f.snap.Current.ID
	return f.knownCurrent != "" && id != f.knownCurrent && !vault.StagedByDaemon(id)
}

// dueReason says why a rotation is due at now, or (ReasonNone) when it next becomes due on its
// own: the renewal time or a canary's next rotation, zero when neither is known. The order is
// the order an operator asks "why": their own request first, the schedule last.
func dueReason(f facts, st vault.RotationState, planned time.Time, s Settings, now time.Time) (Reason, time.Time) {
	canaryAt := canaryDueAt(f, s)
	switch {
	case f.manual:
		return ReasonManual, now
	case RequestPending(st):
		return ReasonOperatorRequest, now
	case !answered(st, f.snap.Current.Record):
		// The current secret predates our latest rotate call, whose secret has not landed.
		return ReasonSecretOwed, now
	case !planned.IsZero() && !now.Before(planned):
		return ReasonRenewal, now
	case !canaryAt.IsZero() && !now.Before(canaryAt):
		return ReasonCanary, now
	}
	switch {
	case planned.IsZero():
		return ReasonNone, canaryAt
	case canaryAt.IsZero():
		return ReasonNone, planned
	}
	return ReasonNone, earlier(planned, canaryAt)
}

// scheduled: a rotation is due on the schedule alone (the renewal time, a canary's), and none is
// under way yet.
func scheduled(why Reason, st vault.RotationState) bool {
	return (why == ReasonRenewal || why == ReasonCanary) && st.Attempts == 0
}

// scheduledReason names what an idle application waits for.
func scheduledReason(f facts, dueAt, planned time.Time) Reason {
	if f.app.Canary && dueAt.Before(planned) {
		return ReasonCanaryScheduled
	}
	return ReasonRenewalScheduled
}

// callAllowedAt is the earliest moment Amazon accepts another rotate call for the application:
// one a minute (Settings.RotateInterval) after the latest call. The vault records each call's
// time before it is made, and a finished rotation's call is the current secret's mint time
// (its expiry less Amazon's lifetime), so the limit holds across restarts and replicas.
func callAllowedAt(st vault.RotationState, cur vault.Record, s Settings) time.Time {
	last := st.LastCallAt
	if !cur.ExpiresAt.IsZero() {
		last = later(last, cur.ExpiresAt.Add(-spapi.SecretLifetime))
	}
	if last.IsZero() {
		return time.Time{}
	}
	return last.Add(s.rotateInterval())
}

// watchdogState is the state the watchdog saves at now, when no secret arrived within the await
// deadline: one more attempt, the next one a backoff after the deadline (after now, when the
// daemon was not running at the deadline: the secret gets its backoff's grace either way).
func watchdogState(st vault.RotationState, s Settings, now time.Time) vault.RotationState {
	st.NextAttemptAt = watchdogRetry(st, s)
	if late := now.Sub(st.RequestedAt.Add(s.AwaitDeadline)); late > 0 {
		st.NextAttemptAt = st.NextAttemptAt.Add(late)
	}
	st.Attempts++
	st.RequestedAt = time.Time{}
	return st
}

// watchdogRetry is when the watchdog's next attempt is due if it runs at the await deadline: a
// backoff after it, its jitter drawn from the rotation id and the attempt, so every process (a replica, the status
// command) computes the same moment.
func watchdogRetry(st vault.RotationState, s Settings) time.Time {
	n := st.Attempts + 1
	j := retryJitter(st.RotationID, n)
	return st.RequestedAt.Add(s.AwaitDeadline).Add(backoff.Equal(n, s.RetryMin, s.RetryMax, func() float64 { return j }))
}

// retryJitter maps a rotation id and an attempt to [0,1), the same in every process.
func retryJitter(rotationID string, attempt int) float64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", rotationID, attempt)
	return float64(h.Sum64()>>11) / (1 << 53)
}

// planProbe schedules the daily proof of AWSCURRENT: the first one at a random point of the
// first interval (a thousand applications started together do not probe together), later ones
// an interval apart give or take a tenth. A rotate request mints a token with the current
// secret anyway, so it counts as the probe.
func planProbe(a *action, f facts, s Settings, now time.Time, jitter float64) {
	shared := f.snap.State.Probe
	recent := shared.VersionID == f.snap.Current.ID && now.Before(shared.At.Add(time.Duration(0.9*float64(s.ProbeEvery))))
	switch {
	case !a.request && recent && (f.probeAt.IsZero() || !now.Before(f.probeAt)):
		// Another replica (or this process before a restart) proved this version lately: the
		// fleet probes once an interval, not once a replica.
		a.nextProbe = shared.At.Add(time.Duration((0.9 + 0.2*jitter) * float64(s.ProbeEvery)))
	case a.request || (!f.probeAt.IsZero() && !now.Before(f.probeAt)):
		a.probe = !a.request
		a.nextProbe = now.Add(time.Duration((0.9 + 0.2*jitter) * float64(s.ProbeEvery)))
	case f.probeAt.IsZero():
		a.nextProbe = now.Add(time.Duration(jitter * float64(s.ProbeEvery)))
	default:
		a.nextProbe = f.probeAt
	}
	if !a.request {
		a.wakeAt = earlier(a.wakeAt, a.nextProbe)
	}
}

// canaryDueAt: a canary rotates CanaryEvery after its current secret was minted; zero for an
// application that is not a canary, or whose secret's mint time is unknown.
func canaryDueAt(f facts, s Settings) time.Time {
	exp := f.snap.Current.Record.ExpiresAt
	if !f.app.Canary || exp.IsZero() {
		return time.Time{}
	}
	return exp.Add(-spapi.SecretLifetime).Add(s.CanaryEvery)
}

// intent is the state saved before a rotate call. A served request is noted in the same
// TagResource call, so a restart sees the request served and the rotation in flight together,
// never one without the other.
func intent(st vault.RotationState, now time.Time) vault.RotationState {
	if RequestPending(st) {
		st.ServedRequest = st.Request.At
	}
	st.RequestedAt, st.LastCallAt = now, now
	return st
}

// notNewer reports whether p expires no later than the current record (a stale pending version).
func notNewer(p, cur vault.Record) bool {
	return !cur.ExpiresAt.IsZero() && !p.ExpiresAt.After(cur.ExpiresAt)
}

// answered reports whether rec is the secret of the latest rotate call (minted no earlier than
// that call was about to be made), or whether no call of ours is outstanding at all.
func answered(st vault.RotationState, rec vault.Record) bool {
	if st.LastCallAt.IsZero() {
		return true
	}
	return !rec.ExpiresAt.Add(-spapi.SecretLifetime).Before(st.LastCallAt.Add(-callSlack))
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
		return vault.RotationState{ServedRequest: st.ServedRequest, Request: st.Request}
	}
	st.RequestedAt = st.LastCallAt
	st.NoticedExpiry, st.InHand = time.Time{}, vault.Lease{}
	return st
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
