package simulation

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/amazon"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// noteKind says what a notification is, for the figures and the invariant checks.
type noteKind int

const (
	noteExpiry noteKind = iota
	noteNewSecret
	notePlanted
	noteReplay
)

// outgoing is a notification on its way from Amazon (or an attacker) to a queue.
type outgoing struct {
	kind noteKind
	body []byte
	seq  int  // mint sequence of the secret it is about; -1 when planted
	last bool // the 1-day expiry notice
}

type evKind int

const (
	evDeliver  evKind = iota // out reaches its queue
	evReplay                 // an old new-secret notification is sent again
	evPlant                  // someone writes a new-secret notification LWA never issued
	evRestart                // the process restarts (between steps, or at a later call)
	evBurst                  // some calls of one application fail
	evSQSFault               // some SQS calls fail
	evWindow                 // a rotation falls due: faults aimed at it
)

type event struct {
	at   time.Time
	seq  int
	kind evKind
	side int
	out  outgoing
}

// scenario is what a seed decides before the run starts.
type scenario struct {
	days                  int
	apps                  int
	twoQueues             bool
	pDrop, pDup, pDelay   float64 // per notification
	pReact                float64 // per fault kind, when a new secret is on its way or a rotation falls due
	replay, plant         float64 // events per day
	restart, burst, sqsOp float64 // events per day
	// canary: the first application is a canary, rotated every canaryEvery whatever its expiry.
	canary bool
	// replicas is how many processes run; pNest, the chance that at a call of one another
	// replica's due work runs first (drawReplicas).
	replicas     int
	pNest, pSlow float64
}

func drawScenario(rng *rand.Rand) scenario {
	u := func(lo, hi float64) float64 { return lo + rng.Float64()*(hi-lo) }
	return scenario{
		days: 200 + rng.IntN(201), apps: 2 + rng.IntN(2), twoQueues: rng.IntN(2) == 0,
		pDrop: u(0, 0.3), pDup: u(0, 0.3), pDelay: u(0, 0.3), pReact: u(0.1, 0.6),
		replay: u(0, 0.1), plant: u(0, 0.05), restart: u(0, 0.2), burst: u(0, 0.5), sqsOp: u(0, 0.2),
		canary: rng.IntN(3) == 0,
	}
}

// schedule adds an event, keeping the list ordered by time and then by insertion.
func (s *sim) schedule(e event) {
	s.evSeq++
	e.seq = s.evSeq
	i, _ := slices.BinarySearchFunc(s.events, e, func(a, b event) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	s.events = slices.Insert(s.events, i, e)
}

// poisson schedules events of kind at rate per day over the run, each aimed at a random app.
func (s *sim) poisson(kind evKind, rate float64) {
	if rate <= 0 {
		return
	}
	for t := s.start; ; {
		// In float64 first: a tiny rate gives a gap that overflows time.Duration.
		gap := s.rng.ExpFloat64() / rate * float64(day)
		if gap >= float64(s.end.Sub(t)) {
			return
		}
		t = t.Add(time.Duration(gap))
		s.schedule(event{at: t, kind: kind, side: s.rng.IntN(len(s.sides))})
	}
}

// deliver sends out through Amazon's delivery: maybe dropped, delayed or duplicated.
func (s *sim) deliver(side *appSide, out outgoing, now time.Time) {
	sc := s.sc
	announced := out.kind != noteExpiry || side.amz.notes[out.seq].announced
	// Never drop every notice about a secret: that fault would be permanent.
	if s.rng.Float64() < sc.pDrop && (announced || !out.last) {
		s.fig.faults["notification dropped"]++
		s.tracef("%s: %s notification about secret #%d dropped", side.app.Name, kindName(out.kind), out.seq)
		return
	}
	if out.kind == noteExpiry {
		side.amz.notes[out.seq].announced = true
	}
	delay := time.Second + time.Duration(s.rng.Int64N(int64(2*time.Minute)))
	if s.rng.Float64() < sc.pDelay {
		delay += 10*time.Minute + time.Duration(s.rng.Int64N(int64(12*time.Hour)))
		s.fig.faults["notification delayed"]++
	}
	s.schedule(event{at: now.Add(delay), kind: evDeliver, side: side.idx, out: out})
	if s.rng.Float64() < sc.pDup {
		s.fig.faults["notification duplicated"]++
		s.schedule(event{at: now.Add(time.Second + time.Duration(s.rng.Int64N(int64(6*time.Hour)))), kind: evDeliver, side: side.idx, out: out})
	}
	if out.kind == noteNewSecret {
		s.react(side, now)
	}
}

// react aims faults at the handling of a new secret that is on its way, and at the rotation
// waiting for it.
func (s *sim) react(side *appSide, now time.Time) {
	p := s.sc.pReact / 2
	if s.rng.Float64() < p {
		s.schedule(event{at: now.Add(time.Duration(s.rng.Int64N(int64(50 * time.Minute)))), kind: evReplay, side: side.idx})
	}
	if s.rng.Float64() < p {
		s.arm(side, svcVault, 1+s.rng.IntN(6), 0, s.rng.IntN(3) == 0)
	}
	if s.rng.Float64() < p {
		s.arm(side, svcLWA, 1+s.rng.IntN(4), s.status(), false)
	}
	if s.rng.Float64() < p {
		s.crashSoon(side, 1+s.rng.IntN(8))
	}
	if s.rng.Float64() < p {
		s.sqsFaults[sqsDelete] += 1 + s.rng.IntN(2)
		s.fig.faults["sqs delete error"]++
	}
}

// window aims faults at a rotation that falls due.
func (s *sim) window(side *appSide) {
	p := s.sc.pReact
	if s.rng.Float64() < p {
		s.arm(side, svcLWA, 1+s.rng.IntN(5), s.status(), false)
	}
	if s.rng.Float64() < p {
		st := s.status()
		s.arm(side, svcSPAPI, 1+s.rng.IntN(5), st, st != http.StatusTooManyRequests && s.rng.IntN(4) == 0)
	}
	if s.rng.Float64() < p {
		s.arm(side, svcVault, 1+s.rng.IntN(8), 0, s.rng.IntN(3) == 0)
	}
	if s.rng.Float64() < p {
		s.crashSoon(side, 1+s.rng.IntN(8))
	}
}

func (s *sim) status() int {
	return [...]int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable}[s.rng.IntN(3)]
}

// crashSoon arms a crash unless one is armed already: one process dies once.
func (s *sim) crashSoon(side *appSide, k int) {
	for _, o := range s.sides {
		if o.crash.armed() {
			return
		}
	}
	if s.rng.IntN(3) == 0 {
		s.armStepCrash(side, rotator.Steps[s.rng.IntN(len(rotator.Steps))])
		return
	}
	s.armCrash(side, k, s.rng.IntN(2) == 0)
}

// replay sends an old new-secret notification again, sometimes under a fresh notification id.
func (s *sim) replay(side *appSide, now time.Time) {
	bodies := side.amz.newSecretBodies
	if len(bodies) == 0 {
		return
	}
	i := s.rng.IntN(len(bodies))
	if len(bodies) >= 2 && s.rng.IntN(2) == 0 {
		i = len(bodies) - 2 // most likely the secret in AWSCURRENT
	}
	body := bodies[i]
	n, err := notifications.Parse(body)
	if err != nil {
		s.violate(side, "harness", "a replayed body does not parse: "+err.Error())
		return
	}
	seq := side.amz.find(n.(*notifications.NewSecret).Secret.Reveal())
	if s.rng.IntN(3) == 0 {
		old := n.Meta().Metadata.NotificationID
		body = bytes.Replace(body, []byte(old), []byte(side.amz.nextNotificationID(s.seed, side.idx)), 1)
	}
	s.fig.faults["stale notification replayed"]++
	s.tracef("%s: replaying the new-secret notification of secret #%d", side.app.Name, seq)
	s.schedule(event{at: now.Add(time.Duration(s.rng.Int64N(int64(time.Minute)))), kind: evDeliver, side: side.idx,
		out: outgoing{kind: noteReplay, body: body, seq: seq}})
}

// plant writes a new-secret notification whose secret LWA never issued, looking newer than any.
func (s *sim) plant(side *appSide, now time.Time) {
	a := &side.amz
	id := a.nextNotificationID(s.seed, side.idx)
	if len(a.newSecretBodies) > 0 && s.rng.IntN(3) == 0 {
		// Reuse a genuine notification id: the vault's token check has to catch it.
		if n, err := notifications.Parse(a.newSecretBodies[len(a.newSecretBodies)-1]); err == nil {
			id = n.Meta().Metadata.NotificationID
		}
	}
	value := secret.New("amzn1.oa2-cs.v1.planted" + id)
	exp := now.Add(spapi.SecretLifetime + time.Duration(s.rng.Int64N(int64(day))))
	st, _ := a.model.State(a.clientID)
	body := amazon.NewSecretBody(amazon.Meta{ApplicationID: st.ApplicationID, SubscriptionID: st.NewSecretSubscriptionID, NotificationID: id, Time: now},
		side.app.ClientID, value, exp, now.Add(amazon.OldSecretLifetime))
	s.fig.faults["planted secret"]++
	s.tracef("%s: planting a secret LWA does not know (notification %s)", side.app.Name, id)
	s.schedule(event{at: now.Add(time.Duration(s.rng.Int64N(int64(time.Minute)))), kind: evDeliver, side: side.idx,
		out: outgoing{kind: notePlanted, body: body, seq: -1}})
}

func kindName(k noteKind) string {
	return [...]string{"expiry", "new-secret", "planted", "replayed"}[k]
}
