package rotator

import (
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// Input is one application's rotation as the decision reads it: one vault snapshot, plus what
// only a running daemon knows. The operator commands leave the daemon-only fields zero.
type Input struct {
	App      App
	Snapshot vault.Snapshot
	// Manual: a SIGUSR1 for this application not yet answered by a promotion.
	Manual bool
	// ProbeAt is when the daemon next proves AWSCURRENT with LWA (zero: not yet planned).
	ProbeAt time.Time
	// KnownCurrent is the AWSCURRENT version the daemon last saw or promoted ("" if none).
	KnownCurrent string
	// Jitter in [0,1) spreads probes and pending retries; never a rotate call's time.
	Jitter float64
	// Holder names the daemon process as a claim holder; the commands leave it empty, so a claim
	// is always someone else's to them.
	Holder string
}

// Decision is what the rotation model says of one application at one instant: where its
// rotation stands, why, and when the daemon will next act on it. The daemon's scheduler performs
// it; `status`, `rotate`, `seed`, `doctor` and the metrics report it. Decide makes it.
type Decision struct {
	Phase  Phase
	Reason Reason
	// NextActionAt is the moment the daemon will next act on the rotation: the rotate call (now
	// when due, the backoff's end, the renewal time, a canary's next rotation, the watchdog's
	// retry while a secret is awaited) or the next try at a staged secret. Zero when nothing is
	// planned: the current secret's expiry is unknown.
	NextActionAt time.Time
	// Expiry is the current secret's effective expiry (EffectiveExpiry); RenewAt is Expiry
	// minus renewBefore. Both zero when unknown.
	Expiry, RenewAt time.Time
	// AwaitDeadline is when the watchdog gives up on a requested secret (zero unless requested).
	AwaitDeadline time.Time
	// ExternalChange: AWSCURRENT is on a version the daemon neither promoted nor saw before.
	ExternalChange bool
	// WindowOpensAt is when the rotation window a scheduled rotation waits for opens (zero when
	// none waits). OutsideWindow: a scheduled rotation starts now, outside the window, because
	// waiting would leave less than the window's safety margin before the secret expires.
	WindowOpensAt time.Time
	OutsideWindow bool
	// OldSecretDiesAt is when the current secret stops working if the daemon makes its rotate
	// call at NextActionAt: Amazon gives it seven more days, never past its own expiry. Zero
	// when no call is planned.
	OldSecretDiesAt time.Time
	// HeldBy names the replica the daemon waits for (ReasonClaimed: the claim's holder;
	// ReasonSecretInHand: the replica holding the new secret), and HeldUntil when its word lapses.
	HeldBy    string
	HeldUntil time.Time
}

// Decide judges one application's rotation at now. It is pure, and it is the scheduler's own
// decision: the daemon performs exactly what plan (behind it) returns.
func Decide(in Input, s Settings, now time.Time) Decision {
	return plan(facts{app: in.App, snap: in.Snapshot, manual: in.Manual, probeAt: in.ProbeAt, knownCurrent: in.KnownCurrent, holder: in.Holder},
		s, now, in.Jitter).decision(in.Snapshot, s)
}

func (a action) decision(snap vault.Snapshot, s Settings) Decision {
	st := snap.State
	d := Decision{Phase: a.phase, Reason: a.reason, NextActionAt: a.actAt, Expiry: a.expiry, RenewAt: a.planned,
		ExternalChange: a.externalChange, WindowOpensAt: a.windowOpensAt, OutsideWindow: a.outsideWindow}
	if a.phase == PhaseRequested && !st.RequestedAt.IsZero() {
		d.AwaitDeadline = st.RequestedAt.Add(s.AwaitDeadline)
	}
	switch {
	case a.reason == ReasonClaimed && snap.Claim != nil:
		d.HeldBy, d.HeldUntil = snap.Claim.Holder, snap.Claim.Until
	case a.reason == ReasonSecretInHand:
		d.HeldBy, d.HeldUntil = st.InHand.By, st.InHand.Until
	}
	if !a.actAt.IsZero() && a.phase != PhasePending {
		d.OldSecretDiesAt = a.actAt.Add(spapi.OldSecretGrace)
		if !a.expiry.IsZero() && a.expiry.Before(d.OldSecretDiesAt) {
			d.OldSecretDiesAt = a.expiry
		}
	}
	return d
}

// Reason says why a rotation stands where it does. Its values are stable words for scripts
// (status --json); Explain gives the sentence for people.
type Reason string

// The reasons.
const (
	ReasonNone             Reason = ""
	ReasonNoExpiry         Reason = "expiry-unknown"
	ReasonRenewalScheduled Reason = "renewal-scheduled"
	ReasonCanaryScheduled  Reason = "canary-scheduled"
	ReasonRenewal          Reason = "renewal-due"
	ReasonCanary           Reason = "canary-due"
	ReasonManual           Reason = "manual"
	ReasonOperatorRequest  Reason = "operator-request"
	ReasonSecretOwed       Reason = "secret-owed"
	ReasonAwaitingSecret   Reason = "awaiting-secret"
	ReasonNewSecretStaged  Reason = "new-secret-staged"
	ReasonStalePending     Reason = "stale-pending"
	ReasonWindowWait       Reason = "window-wait"
	ReasonClaimed          Reason = "claimed-by-replica"
	ReasonSecretInHand     Reason = "secret-in-hand"
)

var explanations = map[Reason]string{
	ReasonNoExpiry:         "the current secret's expiry is unknown: the daemon rotates on Amazon's expiry notice, SIGUSR1 or lwa-rotator rotate",
	ReasonRenewalScheduled: "waiting for the renewal time (the current secret's expiry minus renewBefore)",
	ReasonCanaryScheduled:  "canary: waiting for its next scheduled rotation (canaryEvery after the current secret was minted)",
	ReasonRenewal:          "the current secret expires within renewBefore",
	ReasonCanary:           "canary: canaryEvery has passed since the current secret was minted",
	ReasonManual:           "a rotation was asked for with SIGUSR1",
	ReasonOperatorRequest:  "an operator asked for a rotation (lwa-rotator rotate)",
	ReasonSecretOwed:       "the latest rotate call's new secret never arrived: asking again while the old secret still works",
	ReasonAwaitingSecret:   "a rotate call was accepted: waiting for the new secret on SQS; the watchdog asks again if none arrives by the await deadline",
	ReasonNewSecretStaged:  "a new secret is staged as AWSPENDING: verifying it with LWA and promoting it",
	ReasonStalePending:     "a version staged as AWSPENDING is not newer than the current secret: removing its label",
	ReasonWindowWait:       "a scheduled rotation waits for the rotation window to open",
	ReasonClaimed:          "a replica claimed the due rotation and makes the rotate call; if the rotation is not requested when its claim lapses, another replica takes it over",
	ReasonSecretInHand:     "a replica holds the new secret and could not store it yet: no replica asks Amazon again while it says so",
}

// Explain is the reason as a sentence.
func (r Reason) Explain() string { return explanations[r] }

// EffectiveExpiry is the stored expiry, or the expiry notice's when it is earlier (a notice about
// the current secret is Amazon's word) or when the stored value carries none.
func EffectiveExpiry(rec vault.Record, st vault.RotationState) time.Time {
	e := rec.ExpiresAt
	if !st.NoticedExpiry.IsZero() && (e.IsZero() || st.NoticedExpiry.Before(e)) {
		e = st.NoticedExpiry
	}
	return e
}

// RequestPending reports an operator's request no rotation has been started for yet.
func RequestPending(st vault.RotationState) bool {
	return !st.Request.Invalid && !st.Request.At.IsZero() && !st.Request.At.Equal(st.ServedRequest)
}

// RequestServed reports a request some rotation was started for, whose tags are still there.
func RequestServed(st vault.RotationState) bool {
	return !st.ServedRequest.IsZero() && !RequestPending(st)
}
