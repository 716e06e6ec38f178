package simulation

import (
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/spapi"
)

// service is one of the things the rotator calls that can fail.
type service int

const (
	svcVault service = iota
	svcLWA
	svcSPAPI
	numServices
)

var serviceNames = [numServices]string{"vault", "lwa", "spapi"}

// burst makes the next n calls of one application to one service fail. An ambiguous failure
// takes effect first and reports failure after, like a timeout after the server did the work.
type burst struct {
	skip      int // calls that still succeed before the failing ones
	n         int
	status    int // HTTP status for LWA and SP-API
	ambiguous bool
}

// crashPoint kills the process that makes the application's in-th next call (before the call
// takes effect, or right after), so a restart lands between any two steps of a rotation.
type crashPoint struct {
	in    int
	after bool
	step  rotator.Step // instead: crash when the rotator reaches this checkpoint
}

func (c crashPoint) armed() bool { return c.in > 0 || c.step != "" }

// crashSignal is the panic that stands for the process dying; the driver recovers only it.
type crashSignal struct{}

// enter counts one call from side to svc and applies what is armed for it: the process dies
// here when its crash point is before this call; crashAfter says it dies once the call returns;
// fail is the burst this call fails under, nil when it succeeds. Another replica may run before
// the call takes effect (interleave).
func (s *sim) enter(side *appSide, svc service, op string) (fail *burst, crashAfter bool) {
	p := s.cur()
	p.last = side
	side.stats.calls[svc]++
	if side.crash.in > 0 {
		side.crash.in--
		if side.crash.in == 0 {
			if !side.crash.after {
				s.crash(p, side, op, "before")
			}
			crashAfter = true
		}
	}
	s.interleave(side, op)
	switch b := &side.faults[svc]; {
	case b.skip > 0:
		b.skip--
	case b.n > 0:
		b.n--
		side.stats.faultHits[svc]++
		if b.ambiguous {
			side.stats.ambiguous++
		}
		s.tracef("%s: %s %s fails (%v, ambiguous=%v)", side.app.Name, serviceNames[svc], op, b.status, b.ambiguous)
		return b, crashAfter
	}
	return nil, crashAfter
}

// call runs effect as one call from side to LWA or SP-API, applying the fault or crash armed for
// it. (Secrets Manager calls go through fakesm's hook instead: see smFault.)
func (s *sim) call(side *appSide, svc service, op string, effect func() error) error {
	b, crashAfter := s.enter(side, svc, op)
	var err error
	if b == nil {
		err = effect()
	} else {
		if b.ambiguous {
			_ = effect()
		}
		err = s.faultErr(side, svc, op, b.status)
	}
	if crashAfter {
		s.crash(s.cur(), side, op, "after")
	}
	return err
}

// crash kills process p, which is making a call of side's: it is the innermost one running, so
// the panic unwinds it alone, up to the driver's recover around it.
func (s *sim) crash(p *proc, side *appSide, op, when string) {
	p.dead = true
	s.tracef("%s: %s crashes %s %s", side.app.Name, s.label(p), when, op)
	panic(crashSignal{})
}

func (s *sim) faultErr(side *appSide, svc service, op string, status int) error {
	kind := spapi.ErrTransient
	if status == http.StatusTooManyRequests {
		kind = spapi.ErrThrottled
	}
	reqID := fmt.Sprintf("sim-%d-%d", side.idx, side.stats.calls[svc])
	switch svc {
	case svcLWA:
		code := "server_error"
		if status == http.StatusTooManyRequests {
			code = "too_many_requests"
		}
		return &spapi.Error{API: "lwa", Op: "token", StatusCode: status, Code: code, RequestID: reqID, Kind: kind}
	case svcSPAPI:
		return &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: status, Code: http.StatusText(status), RequestID: reqID, Kind: kind}
	}
	return &smtypes.InternalServiceError{Message: aws.String("simulated failure of " + op + " (request " + reqID + ")")}
}

// arm makes n calls of side to svc fail, after letting up to five more succeed first, so that
// every step of a handler gets to be the one that fails.
func (s *sim) arm(side *appSide, svc service, n, status int, ambiguous bool) {
	b := &side.faults[svc]
	if b.n == 0 {
		b.skip = s.rng.IntN(6)
	}
	// A burst replaces one still pending rather than adding to it: bursts armed months apart on a
	// service an application seldom calls would otherwise pile up into one outage of weeks, a
	// permanent fault no daemon can outlast.
	b.n = max(b.n, n)
	b.status, b.ambiguous = status, ambiguous
	kind := serviceNames[svc]
	switch {
	case svc == svcVault && ambiguous:
		kind += " error after effect"
	case svc == svcVault:
		kind += " error"
	case ambiguous:
		kind += fmt.Sprintf(" %d after effect", status)
	case status == http.StatusTooManyRequests:
		kind += " 429"
	default:
		kind += " 5xx"
	}
	s.fig.faults[kind] += n
	s.tracef("%s: next %d %s calls fail (%s)", side.app.Name, n, serviceNames[svc], kind)
}

// armCrash makes side's k-th next call crash the process.
func (s *sim) armCrash(side *appSide, k int, after bool) {
	side.crash = crashPoint{in: k, after: after}
	s.fig.faults["crash armed at a call"]++
	s.tracef("%s: process will crash at its call #%d (after effect: %v)", side.app.Name, k, after)
}

// armStepCrash makes side crash when the rotator next reaches step.
func (s *sim) armStepCrash(side *appSide, step rotator.Step) {
	side.crash = crashPoint{step: step}
	s.fig.faults["crash armed at step "+string(step)]++
	s.tracef("%s: process will crash at checkpoint %s", side.app.Name, step)
}

// checkpoint is process p's rotator.Options.Checkpoint. The step belongs to the application p's
// rotator last called a fake for: every checkpoint follows such a call.
func (s *sim) checkpoint(p *proc, step rotator.Step) {
	if side := p.last; side != nil && side.crash.step == step {
		side.crash = crashPoint{}
		s.crash(p, side, "checkpoint", string(step))
	}
}
