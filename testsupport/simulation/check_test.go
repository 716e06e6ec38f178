package simulation

import (
	"fmt"
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// minWatchdogGap is the least time between two rotate calls of one due rotation when the first
// was answered as accepted (onAccepted).
const minWatchdogGap = awaitDeadline + retryMin/2 - rotator.DefaultClaimLease/5 - rotateLatency

// The invariants, as named in failure reports and figures.
const (
	invLost      = "1 no lost secret"
	invVerified  = "2 AWSCURRENT only moves to a secret LWA accepts"
	invBackwards = "3 never backwards"
	invPrevious  = "4 AWSPREVIOUS holds the previous secret"
	invDuplicate = "5 no duplicate rotation"
	invOneCall   = "5 one accepted rotate call per due rotation"
	invOutage    = "0 AWSCURRENT always valid"
)

type violation struct {
	at   time.Time
	inv  string
	app  string
	what string
}

func (v violation) String() string {
	return fmt.Sprintf("%s [%s] %s: %s", v.at.Format(time.DateTime), v.inv, v.app, v.what)
}

// violate records a broken invariant, on the application's side when it is about one.
func (s *sim) violate(side *appSide, inv, what string) {
	v := violation{at: s.clk.Now(), inv: inv, what: what}
	s.tracef("VIOLATION %s: %s", inv, what)
	if side == nil {
		s.violations = append(s.violations, v)
		return
	}
	v.app = side.app.Name
	side.viol = append(side.viol, v)
}

// describe names a secret by its mint sequence, for reports.
func (side *appSide) describe(value string) string {
	if seq := side.amz.find(value); seq >= 0 {
		return fmt.Sprintf("secret #%d", seq)
	}
	return "a planted secret"
}

// onPromote checks a move of AWSCURRENT from version oldID ("" for none) to newID, as it happens.
func (s *sim) onPromote(side *appSide, oldID, newID string) {
	now, a := s.clk.Now(), &side.amz
	side.stats.promotions++
	v, ok := s.record(side, newID)
	if !ok {
		s.violate(side, invVerified, "AWSCURRENT moved to version "+newID+", which holds no record")
		return
	}
	seq := a.find(v.ClientSecret.Reveal())
	s.tracef("%s: AWSCURRENT moves to %s (version %.8s)", side.app.Name, side.describe(v.ClientSecret.Reveal()), newID)
	switch {
	case seq < 0:
		s.violate(side, invVerified, "AWSCURRENT moved to a secret LWA never issued (planted)")
	case !a.secret(seq).LastAccepted.Equal(now):
		s.violate(side, invVerified, fmt.Sprintf("AWSCURRENT moved to secret #%d, which LWA last accepted at %v, not now", seq, a.secret(seq).LastAccepted))
	case !a.valid(seq, now):
		s.violate(side, invVerified, fmt.Sprintf("AWSCURRENT moved to secret #%d, which expired at %v", seq, a.secret(seq).ExpiresAt))
	}
	h := &side.hist
	if seq >= 0 && h.currentSeq >= 0 && seq <= h.currentSeq {
		s.violate(side, invBackwards, fmt.Sprintf("AWSCURRENT moved from secret #%d back to secret #%d", h.currentSeq, seq))
	}
	if old, ok := s.record(side, oldID); ok {
		if !old.ExpiresAt.IsZero() && !v.ExpiresAt.After(old.ExpiresAt) {
			s.violate(side, invBackwards, fmt.Sprintf("AWSCURRENT's recorded expiry went from %v to %v", old.ExpiresAt, v.ExpiresAt))
		}
		if prev, _, _ := s.holder(side, vault.StagePrevious); prev != oldID {
			s.violate(side, invPrevious, fmt.Sprintf("after AWSCURRENT moved off version %.8s, AWSPREVIOUS is not on it", oldID))
		}
		if os := a.find(old.ClientSecret.Reveal()); os >= 0 && !a.secret(os).ExpiresAt.Equal(v.PreviousExpiresAt) {
			side.stats.prevMismatch++
		}
	}
	h.currentSeq = seq
	h.promotedSince, h.promotedSinceAccepted = true, true
}

// onReportedRotate checks that a rotate call the rotator saw succeed is not a second one for
// the same need: within the await deadline of the last one, with no promotion in between.
func (s *sim) onReportedRotate(side *appSide) {
	now, h := s.clk.Now(), &side.hist
	if !h.lastReported.IsZero() && !h.promotedSince && now.Sub(h.lastReported) < awaitDeadline {
		s.violate(side, invDuplicate, fmt.Sprintf("rotated again %v after the accepted rotate call at %s, with no promotion in between",
			now.Sub(h.lastReported), h.lastReported.Format(time.DateTime)))
	}
	h.lastReported, h.promotedSince = now, false
}

// onAccepted checks invariant 5 at every rotate call Amazon accepts (it minted a secret), made by
// any replica: at most one accepted call per due rotation.
//
// A due rotation of an application runs from one move of AWSCURRENT to the next: a promotion
// ends it, whatever secret it promoted. Within one, a rotate call Amazon accepted may be followed
// by another accepted call only once some replica had grounds to ask again:
//   - no secret came within the await deadline (the watchdog). A replica asks again only a retry
//     backoff (at least RetryMin/2) after AwaitDeadline has passed since the intent, which is
//     saved before the call; the call follows its intent within the claim's time to call (the
//     first fifth of the lease, plus rotateLatency). So two such calls are at least
//     minWatchdogGap apart.
//   - its caller was told it failed (a 5xx, a timeout after Amazon acted): the caller cannot know
//     a secret is on its way, records a failed attempt and tries again after the retry backoff,
//     at least RetryMin/2 later; every other replica reads that attempt, or the intent before
//     it, and waits as long.
//
// A call whose answer nobody saw (the process died after Amazon acted) counts as answered: its
// intent is in the vault, so every replica waits for the deadline. So the violation is: a second
// accepted call, with no promotion since the first, sooner than minWatchdogGap after a first call
// answered as accepted, or sooner than RetryMin/2 after a first call answered as failed. Two
// replicas that both judged one rotation due and both called (the claim is what stops that)
// break it by a rotateLatency.
func (s *sim) onAccepted(side *appSide) {
	now, h := s.clk.Now(), &side.hist
	s.fig.acceptedChecked++
	if !h.lastAccepted.IsZero() && !h.promotedSinceAccepted {
		gap := now.Sub(h.lastAccepted)
		switch {
		case !h.acceptedFailed && gap < minWatchdogGap:
			s.violate(side, invOneCall, fmt.Sprintf("Amazon accepted a second rotate call %v after the one at %s, whose caller was told it was accepted, with no promotion in between",
				gap, h.lastAccepted.Format(time.DateTime)))
		case h.acceptedFailed && gap < retryMin/2:
			s.violate(side, invOneCall, fmt.Sprintf("Amazon accepted a second rotate call %v after the one at %s (answered as failed), sooner than the retry backoff allows, with no promotion in between",
				gap, h.lastAccepted.Format(time.DateTime)))
		}
	}
	h.lastAccepted, h.acceptedFailed, h.promotedSinceAccepted = now, false, false
}

// checkAck checks invariant 1 when the consumer deletes message id: the genuine secret it
// carries is in the vault under a staging label, or is not newer than AWSCURRENT.
func (s *sim) checkAck(id string) {
	m, ok := s.sent[id]
	if !ok {
		s.violate(nil, invLost, fmt.Sprintf("deleted message %q, which the harness never sent", id))
		return
	}
	n, err := notifications.Parse(m.body)
	if err != nil {
		s.violate(nil, invLost, fmt.Sprintf("message %s deleted although it does not parse", id))
		return
	}
	ns, ok := n.(*notifications.NewSecret)
	if !ok {
		return
	}
	side := s.byClient[ns.ClientID]
	value := ns.Secret.Reveal()
	s.fig.acksChecked++
	seq := side.amz.find(value)
	if seq < 0 {
		s.fig.plantedDeleted++
		return
	}
	_, cur, _ := s.current(side)
	curSeq := side.amz.find(cur.ClientSecret.Reveal())
	if s.labelled(side, value) || (curSeq >= 0 && seq <= curSeq) {
		return
	}
	pending := "nothing"
	if _, p, ok := s.holder(side, vault.StagePending); ok {
		pending = side.describe(p.ClientSecret.Reveal())
		if side.amz.find(p.ClientSecret.Reveal()) >= 0 {
			pending += " (genuine, so nothing is lost this time; the rotator could not know that before LWA verified it)"
		} else {
			pending += ": the secret is lost"
		}
	}
	s.violate(side, invLost, fmt.Sprintf("deleted the %s message %s (notification %s) for secret #%d, which is in no labelled version and newer than AWSCURRENT (secret #%d); AWSPENDING holds %s",
		kindName(m.kind), id, ns.Metadata.NotificationID, seq, curSeq, pending))
}

// checkCurrent is the big one: at every instant AWSCURRENT holds a secret LWA accepts.
func (s *sim) checkCurrent(now time.Time) {
	for _, side := range s.sides {
		_, cur, _ := s.current(side)
		seq := side.amz.find(cur.ClientSecret.Reveal())
		bad := !side.amz.valid(seq, now)
		if bad && !side.hist.down {
			valid := "no secret at all: the application is locked out"
			for i := side.amz.count() - 1; i >= 0; i-- {
				if side.amz.valid(i, now) {
					valid = fmt.Sprintf("only secret #%d, which is not in AWSCURRENT", i)
					break
				}
			}
			when := "never valid"
			if seq >= 0 {
				when = "expired at " + side.amz.secret(seq).ExpiresAt.Format(time.DateTime)
			}
			s.violate(side, invOutage, fmt.Sprintf("AWSCURRENT holds secret #%d, %s; LWA accepts %s", seq, when, valid))
		}
		side.hist.down = bad
	}
}

// deadLettered counts message id, which the redrive policy parked.
func (s *sim) deadLettered(id string) {
	m := s.sent[id]
	s.fig.dlq[kindName(m.kind)]++
	s.tracef("message %s (%s) moved to the dead-letter queue", id, kindName(m.kind))
	if m.kind == noteNewSecret || m.kind == noteReplay {
		side := s.sides[0]
		if n, err := notifications.Parse(m.body); err == nil {
			side = s.byClient[n.(*notifications.NewSecret).ClientID]
		}
		_, cur, _ := s.current(side)
		if m.seq > side.amz.find(cur.ClientSecret.Reveal()) {
			s.fig.genuineDLQ++
		}
	}
}

// observer counts what the rotator reports through rotator.Observer and the dispatcher through
// notifications.OutcomeObserver.
type observer struct{ s *sim }

func (o observer) Rotation(app string, result rotator.Result) {
	if side, ok := o.s.byName[app]; ok {
		side.stats.rotation[string(result)]++
	}
}

// RequestWatchRead: the simulation checks the vault's state, not the watch's reads.
func (observer) RequestWatchRead(time.Time, error) {}

func (o observer) Notification(app, typ string, outcome notifications.Outcome) {
	short := map[string]string{notifications.TypeExpiry: "expiry", notifications.TypeNewSecret: "new-secret"}[typ]
	if short == "" {
		short = "unknown"
	}
	if side, ok := o.s.byName[app]; ok {
		side.stats.outcome[short+" "+string(outcome)]++
		return
	}
	o.s.fig.outcome[short+" "+string(outcome)]++
}
