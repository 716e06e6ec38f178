package status

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// Assessment is what an operator should know of one application's rotation at one instant: the
// daemon's decision, and which of its answers need a person.
type Assessment struct {
	// Decision is rotator.Decide on the read at the instant (zero when the secret could not be
	// read): the daemon makes the same one on the same snapshot.
	Decision rotator.Decision
	// Attention: an operator should act (Problems says why); the command exits 1.
	Attention bool
	Problems  []string
	// Action is what to do about the first problem ("" without one).
	Action string
	// Notes are worth knowing but need no action.
	Notes []string
}

// What an operator does about each kind of problem.
const (
	actionDaemon = "make sure the daemon is running and reaches LWA, SP-API and its queues (its log, /readyz, the lwa_rotator_* metrics and alerts): it acts on this rotation at its next pass"
	actionAccess = "check that this identity may call secretsmanager:DescribeSecret and GetSecretValue on the secret, and kms:Decrypt on its key through Secrets Manager (deploy/iam/operator-policy.json), and that the stored values are records in the configured secretFormat"
)

// Assess judges s at now with the daemon's settings. It is pure: same inputs, same answer. Only
// what the decision says is judged here; the attention rules are the ones a person needs on top
// of it: the read failed, the current secret has expired, or the daemon should already have
// acted (a rotation overdue, or due and owed while the secret runs out).
func Assess(s State, set rotator.Settings, now time.Time) Assessment {
	var a Assessment
	problem := func(action, format string, args ...any) {
		if !a.Attention {
			a.Action = action
		}
		a.Attention = true
		a.Problems = append(a.Problems, fmt.Sprintf(format, args...))
	}
	note := func(format string, args ...any) { a.Notes = append(a.Notes, fmt.Sprintf(format, args...)) }

	seed := "lwa-rotator seed --app " + s.App.Name
	switch {
	case errors.Is(s.ReadErr, vault.ErrNoCurrent):
		problem(seed, "the secret has no AWSCURRENT version: store the first one with `%s`", seed)
		return a
	case errors.Is(s.ReadErr, vault.ErrNotFound):
		problem(seed, "secret %s does not exist: create it with the first secret with `%s`", s.App.SecretID, seed)
		return a
	case s.ReadErr != nil:
		problem(actionAccess, "cannot read the secret: %v", s.ReadErr)
		return a
	}
	d := rotator.Decide(rotator.Input{App: s.App, Snapshot: s.Snapshot}, set, now)
	a.Decision = d
	st := s.Snapshot.State

	expired := !d.Expiry.IsZero() && !now.Before(d.Expiry)
	if expired {
		problem("get the working client secret from the Developer Console and store it with `"+seed+" --force`",
			"the current secret expired at %s", stamp(d.Expiry))
	}
	owed := d.Phase == rotator.PhaseDue || d.Phase == rotator.PhaseBackingOff
	switch {
	case d.Phase == rotator.PhaseOverdue:
		problem(actionDaemon, "the rotate call of %s got no new secret by its await deadline %s (awaitDeadline %s), and the daemon has not asked again",
			stamp(st.RequestedAt), stamp(st.RequestedAt.Add(set.AwaitDeadline)), human(set.AwaitDeadline))
	case owed && d.Reason == rotator.ReasonSecretOwed:
		problem(actionDaemon, "the new secret of the latest rotate call (%s) never arrived%s", stamp(st.LastCallAt), expiresNote(d, expired))
	case owed && d.Reason == rotator.ReasonRenewal && !expired:
		problem(actionDaemon, "the current secret expires at %s, inside renewBefore (%s), and no rotation is in flight", stamp(d.Expiry), human(set.RenewBefore))
	}

	note("%s (%s): %s", d.Phase, d.Reason, d.Reason.Explain())
	switch n := nextAction(d); {
	case d.Reason == rotator.ReasonWindowWait:
		call := "then"
		if !d.NextActionAt.Equal(d.WindowOpensAt) {
			call = "at " + stamp(d.NextActionAt)
		}
		note("the rotation window (%s) opens at %s: the daemon calls rotate %s, and the current secret then stops working at %s",
			s.App.Window, stamp(d.WindowOpensAt), call, stamp(d.OldSecretDiesAt))
	case n != "":
		note("%s", n)
	}
	switch d.Reason {
	case rotator.ReasonClaimed:
		note("replica %s holds the claim on this rotation until %s", d.HeldBy, stamp(d.HeldUntil))
	case rotator.ReasonSecretInHand:
		note("replica %s holds the new secret and could not store it yet; its word lapses at %s", d.HeldBy, stamp(d.HeldUntil))
	}
	if d.OutsideWindow {
		note("the daemon rotates outside the rotation window (%s): waiting for it would leave less than its safety margin (%s) before the current secret expires at %s",
			s.App.Window, human(s.App.Window.Margin()), stamp(d.Expiry))
	}
	if p := s.Snapshot.Pending; p != nil {
		note("version %s is staged as AWSPENDING", p.ID)
	}
	if st.Attempts > 0 {
		note("%d failed rotation attempt(s) in this rotation", st.Attempts)
	}
	if st.Request.Invalid {
		note("the %s tag is not an RFC 3339 time: the daemon removes it without rotating; ask again with `lwa-rotator rotate`", vault.TagRequestAt)
	}
	if rotator.RequestPending(st) {
		by := ""
		if st.Request.By != "" {
			by = " by " + st.Request.By
		}
		note("a rotation was requested at %s%s and waits for the daemon", stamp(st.Request.At), by)
	}
	return a
}

func expiresNote(d rotator.Decision, expired bool) string {
	if d.Expiry.IsZero() || expired {
		return ""
	}
	return ", and the current secret expires at " + stamp(d.Expiry)
}

// nextAction says what the daemon does next and when: the decision's NextActionAt, in words.
func nextAction(d rotator.Decision) string {
	at := stamp(d.NextActionAt)
	if at == "" {
		return ""
	}
	switch d.Phase {
	case rotator.PhaseIdle:
		return "the daemon rotates at " + at
	case rotator.PhaseDue:
		return "the daemon calls rotate at its next pass (" + at + ")"
	case rotator.PhaseBackingOff, rotator.PhaseOverdue:
		return "the daemon calls rotate again at " + at
	case rotator.PhaseRequested:
		return fmt.Sprintf("the new secret is awaited until %s; if none arrives the daemon calls rotate again at %s", stamp(d.AwaitDeadline), at)
	case rotator.PhasePending:
		return "the daemon settles the staged version at its next pass (" + at + ")"
	}
	return "the daemon acts next at " + at
}

// human writes a duration as the configuration file would: 30d, 1h, 90s.
func human(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// stamp formats a time for people and scripts alike: RFC 3339 in UTC.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
