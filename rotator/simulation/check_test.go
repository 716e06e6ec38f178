package simulation

import (
	"fmt"
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// The invariants, as named in failure reports and figures.
const (
	invLost      = "1 no lost secret"
	invVerified  = "2 AWSCURRENT only moves to a secret LWA accepts"
	invBackwards = "3 never backwards"
	invPrevious  = "4 AWSPREVIOUS holds the previous secret"
	invDuplicate = "5 no duplicate rotation"
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

// violate records a broken invariant. Violations found while the rotator works on an application
// live on its side, so a tick rolled back after a crash forgets them with everything else it did
// (the replayed tick finds them again).
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

// onPromote checks a move of AWSCURRENT from old (nil: none) to v, as it happens.
func (s *sim) onPromote(side *appSide, old, v *version) {
	now, a := s.clk.Now(), &side.amz
	side.stats.promotions++
	seq := a.find(v.rec.ClientSecret.Reveal())
	s.tracef("%s: AWSCURRENT moves to %s (version %.8s)", side.app.Name, side.describe(v.rec.ClientSecret.Reveal()), v.id)
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
	if old != nil && !old.rec.ExpiresAt.IsZero() && !v.rec.ExpiresAt.After(old.rec.ExpiresAt) {
		s.violate(side, invBackwards, fmt.Sprintf("AWSCURRENT's recorded expiry went from %v to %v", old.rec.ExpiresAt, v.rec.ExpiresAt))
	}
	if prev := side.vault.holder(vault.StagePrevious); old != nil && prev != old {
		s.violate(side, invPrevious, fmt.Sprintf("after AWSCURRENT moved off version %.8s, AWSPREVIOUS is not on it", old.id))
	}
	if old != nil {
		if os := a.find(old.rec.ClientSecret.Reveal()); os >= 0 && !a.secret(os).ExpiresAt.Equal(v.rec.PreviousExpiresAt) {
			side.stats.prevMismatch++
		}
	}
	h.currentSeq = seq
	h.promotedSince = true
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

// checkAck checks invariant 1 when the rotator says a message may be deleted: the genuine secret
// it carries is in the vault under a staging label, or is not newer than AWSCURRENT.
func (s *sim) checkAck(m *qmsg, res notifications.Result, now time.Time) {
	if !res.Delete || m == nil {
		return
	}
	n, err := notifications.Parse(m.body)
	if err != nil {
		s.violate(nil, invLost, fmt.Sprintf("message %s deleted although it does not parse", m.id))
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
	cur := side.vault.holder(vault.StageCurrent)
	curSeq := side.amz.find(cur.rec.ClientSecret.Reveal())
	if side.vault.labelled(value) || (curSeq >= 0 && seq <= curSeq) {
		return
	}
	pending := "nothing"
	if p := side.vault.holder(vault.StagePending); p != nil {
		pending = side.describe(p.rec.ClientSecret.Reveal())
		if side.amz.find(p.rec.ClientSecret.Reveal()) >= 0 {
			pending += " (genuine, so nothing is lost this time; the rotator could not know that before LWA verified it)"
		} else {
			pending += ": the secret is lost"
		}
	}
	s.violate(side, invLost, fmt.Sprintf("deleted the %s message %s (notification %s) for secret #%d, which is in no labelled version and newer than AWSCURRENT (secret #%d); AWSPENDING holds %s",
		kindName(m.out.kind), m.id, ns.Metadata.NotificationID, seq, curSeq, pending))
}

// checkCurrent is the big one: at every instant AWSCURRENT holds a secret LWA accepts.
func (s *sim) checkCurrent(now time.Time) {
	for _, side := range s.sides {
		cur := side.vault.holder(vault.StageCurrent)
		seq := side.amz.find(cur.rec.ClientSecret.Reveal())
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

// deadLettered counts a message the redrive policy parked.
func (s *sim) deadLettered(m *qmsg) {
	s.fig.dlq[kindName(m.out.kind)]++
	s.tracef("message %s (%s) moved to the dead-letter queue", m.id, kindName(m.out.kind))
	if m.out.kind == noteNewSecret || m.out.kind == noteReplay {
		side := s.sides[0]
		if n, err := notifications.Parse(m.body); err == nil {
			side = s.byClient[n.(*notifications.NewSecret).ClientID]
		}
		cur := side.vault.holder(vault.StageCurrent)
		if m.out.seq > side.amz.find(cur.rec.ClientSecret.Reveal()) {
			s.fig.genuineDLQ++
		}
	}
}

// observer counts what the rotator reports through rotator.Observer.
type observer struct{ s *sim }

func (o observer) Rotation(app, result string) {
	if side, ok := o.s.byName[app]; ok {
		side.stats.rotation[result]++
	}
}

func (o observer) Notification(app, typ, outcome string) {
	short := map[string]string{notifications.TypeExpiry: "expiry", notifications.TypeNewSecret: "new-secret"}[typ]
	if short == "" {
		short = "unknown"
	}
	if side, ok := o.s.byName[app]; ok {
		side.stats.outcome[short+" "+outcome]++
		return
	}
	o.s.fig.outcome[short+" "+outcome]++
}
