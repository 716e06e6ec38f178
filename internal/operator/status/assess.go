package status

import (
	"fmt"
	"strings"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault"
)

// Settings are the configuration's timings the judgement depends on.
type Settings struct {
	RenewBefore   time.Duration
	AwaitDeadline time.Duration
}

// Assessment is the judgement of one application's State at one instant.
type Assessment struct {
	// Attention: an operator should act (Problems says why); the command exits 1.
	Attention bool
	Problems  []string
	// Notes are worth knowing but need no action.
	Notes []string
	// Expiry is the current secret's effective expiry: the stored one, or an earlier notice's.
	Expiry time.Time
	// NextRotation is when the daemon plans to rotate (expiry − renewBefore, or a later retry
	// time after failures); zero when unknown or while a rotation is in flight.
	NextRotation time.Time
	// InFlight: a rotate call was accepted (or is about to be made) and its secret has not landed.
	InFlight bool
}

// Assess judges s at now. It is pure: same inputs, same answer.
func Assess(s State, set Settings, now time.Time) Assessment {
	var a Assessment
	problem := func(format string, args ...any) {
		a.Attention = true
		a.Problems = append(a.Problems, fmt.Sprintf(format, args...))
	}
	note := func(format string, args ...any) { a.Notes = append(a.Notes, fmt.Sprintf(format, args...)) }

	if s.ReadErr != nil {
		problem("cannot read the secret: %v", s.ReadErr)
		return a
	}
	if s.NoCurrent {
		problem("the secret has no AWSCURRENT version: store the first one with `lwa-rotator seed --app %s`", s.App.Name)
		return a
	}
	st := s.Rotation
	a.Expiry = vault.EffectiveExpiry(vault.Record{ExpiresAt: s.CurrentExpiry}, st)
	a.InFlight = !st.RequestedAt.IsZero()
	var planned time.Time
	if !a.Expiry.IsZero() {
		planned = a.Expiry.Add(-set.RenewBefore)
	}
	if !a.InFlight && !planned.IsZero() {
		a.NextRotation = planned
		if st.NextAttemptAt.After(planned) {
			a.NextRotation = st.NextAttemptAt
		}
	}

	switch {
	case a.Expiry.IsZero():
		note("the current secret's expiry is unknown (stored without clientSecretExpiryTime): the daemon rotates on Amazon's expiry notice, SIGUSR1 or `lwa-rotator rotate`")
	case !now.Before(a.Expiry):
		problem("the current secret expired at %s", stamp(a.Expiry))
	case !now.Before(planned) && !a.InFlight && s.PendingVersionID == "":
		problem("the current secret expires at %s, inside renewBefore (%s), and no rotation is in flight", stamp(a.Expiry), human(set.RenewBefore))
	}
	if a.InFlight {
		if deadline := st.RequestedAt.Add(set.AwaitDeadline); now.After(deadline) {
			problem("a rotation has been in flight since %s, past awaitDeadline (%s): the new secret has not arrived", stamp(st.RequestedAt), human(set.AwaitDeadline))
		} else {
			note("a rotation is in flight since %s; the new secret is expected by %s", stamp(st.RequestedAt), stamp(deadline))
		}
	}
	if s.PendingVersionID != "" {
		note("a new secret (version %s) is staged as AWSPENDING and not yet verified and promoted", s.PendingVersionID)
	}
	if st.Attempts > 0 {
		note("%d failed rotation attempt(s) in this rotation; next attempt not before %s", st.Attempts, stamp(st.NextAttemptAt))
	}
	if st.Request.Invalid {
		note("the %s tag is not an RFC 3339 time: the daemon removes it without rotating; ask again with `lwa-rotator rotate`", vault.TagRequestAt)
	}
	if st.RequestPending() {
		by := ""
		if st.Request.By != "" {
			by = " by " + st.Request.By
		}
		note("a rotation was requested at %s%s and waits for the daemon", stamp(st.Request.At), by)
	}
	return a
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
