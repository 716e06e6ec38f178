package simulation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/amazon"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const day = 24 * time.Hour

// noticeOffsets: Amazon sends expiry notices this long before a secret expires.
var noticeOffsets = [...]time.Duration{90 * day, 60 * day, 30 * day, 15 * day, 7 * day, 1 * day}

// notices is the harness's bookkeeping about one secret's expiry notices; the secret itself is
// in the model.
type notices struct {
	sent      uint8 // bit i: the notice noticeOffsets[i] before expiry was sent or skipped
	announced bool  // an expiry notice about it reached a queue
}

// amazonSide is Amazon's view of one application: the model (holding this application alone) and
// what the harness adds to it.
// Mint sequence i is the model's secret i; 0 is the one the run starts with.
type amazonSide struct {
	model           *amazon.Model
	clientID        string
	notes           []notices // by mint sequence
	seq             int       // ids handed out (tokens, notifications, request ids)
	newSecretBodies [][]byte  // every genuine new-secret notification, for replays
	// noticeAt is when the next expiry notice is due, while noticeKnown; a mint changes expiries
	// and unknows it.
	noticeAt    time.Time
	noticeKnown bool
}

// find returns the mint sequence of value, or -1 for a secret LWA never issued.
func (a *amazonSide) find(value string) int { return a.model.Find(a.clientID, secret.New(value)) }

// secret returns the secret with mint sequence seq (zero for none).
func (a *amazonSide) secret(seq int) amazon.Secret {
	c, _ := a.model.Secret(a.clientID, seq)
	return c
}

func (a *amazonSide) count() int { return a.model.Secrets(a.clientID) }

func (a *amazonSide) valid(seq int, at time.Time) bool {
	c, ok := a.model.Secret(a.clientID, seq)
	return ok && c.Valid(at)
}

// skipPassed marks the notices whose time has already gone as sent, as Amazon would not send
// a 90-day notice for a secret that now has 7 days left.
func (n *notices) skipPassed(expiry, now time.Time) {
	for i, off := range noticeOffsets {
		if expiry.Add(-off).Before(now) {
			n.sent |= 1 << i
		}
	}
}

// sideIDs is the model's amazon.IDs for one application: pure functions of the seed, the
// application and its own counters, so they do not depend on the order anything asked for them.
type sideIDs struct {
	seed uint64
	side *appSide
}

func (g sideIDs) ClientSecret() secret.Value {
	seq := uint64(len(g.side.amz.notes)) // the mint sequence the new secret gets
	return secret.New(fmt.Sprintf("amzn1.oa2-cs.v1.%016x%016x", mix(g.seed^uint64(g.side.idx)<<40^seq), mix(g.seed+seq)))
}

// AccessToken is named after the token request, which counted itself already.
func (g sideIDs) AccessToken() string {
	return fmt.Sprintf("Atza|sim.%d.%d", g.side.idx, g.side.amz.seq)
}

func (g sideIDs) UUID() string { return g.side.amz.nextNotificationID(g.seed, g.side.idx) }

type fakeLWA struct{ s *sim }

func invalidClient(reqID string) error {
	return &spapi.Error{API: "lwa", Op: "token", StatusCode: http.StatusUnauthorized, Code: "invalid_client",
		Message: "Client authentication failed", RequestID: reqID, Kind: spapi.ErrInvalidClient}
}

func (f fakeLWA) Token(_ context.Context, clientID string, sec secret.Value) (spapi.Token, error) {
	side, ok := f.s.byClient[clientID]
	if !ok {
		return spapi.Token{}, invalidClient("unknown-client")
	}
	var tok spapi.Token
	err := f.s.call(side, svcLWA, "token", func() error {
		now, a := f.s.clk.Now(), &side.amz
		a.seq++
		t, err := a.model.Token(now, clientID, sec)
		if err != nil {
			side.stats.rejected++
			return invalidClient(fmt.Sprintf("lwa-%d-%d", side.idx, a.seq))
		}
		side.stats.validations++
		tok = spapi.Token{AccessToken: secret.New(t.Value), ExpiresIn: t.ExpiresAt.Sub(now), Scope: spapi.Scope}
		return nil
	})
	return tok, err
}

type fakeSPAPI struct{ s *sim }

func (f fakeSPAPI) RotateClientSecret(_ context.Context, clientID string, _ spapi.Region, tok secret.Value) (string, error) {
	side, ok := f.s.byClient[clientID]
	if !ok {
		return "", &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusForbidden, Kind: spapi.ErrUnauthorized}
	}
	var reqID string
	mints := side.stats.mints
	err := f.s.call(side, svcSPAPI, "rotateClientSecret", func() error {
		if f.s.multi() && f.s.timeMoves() {
			f.s.clk.Advance(rotateLatency) // the request's way to Amazon: see replicas_test.go
		}
		now, a := f.s.clk.Now(), &side.amz
		a.seq++
		reqID = fmt.Sprintf("spapi-%d-%d", side.idx, a.seq)
		before := a.secret(a.count() - 1).ExpiresAt
		r, err := a.model.Rotate(now, tok.Reveal())
		switch {
		case errors.Is(err, amazon.ErrThrottled):
			side.stats.throttled++
			return &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusTooManyRequests, Code: "QuotaExceeded", RequestID: reqID, Kind: spapi.ErrThrottled}
		case err != nil: // the token is unknown (another application's) or expired
			return &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusForbidden, Code: "Unauthorized", RequestID: reqID, Kind: spapi.ErrUnauthorized}
		}
		f.s.minted(side, r, before, now)
		f.s.onAccepted(side)
		return nil
	})
	if err == nil {
		f.s.onReportedRotate(side)
	} else if side.stats.mints > mints {
		side.hist.acceptedFailed = true // Amazon acted, and its caller was told the call failed
	}
	return reqID, err
}

// minted takes in a secret the model minted: the previous newest (which expired at before) now
// dies within the old-secret lifetime, and the new one goes out as a new-secret notification.
func (s *sim) minted(side *appSide, r amazon.Rotation, before, now time.Time) {
	a := &side.amz
	if r.OldExpiresAt.Before(before) {
		a.notes[r.Seq-1].skipPassed(r.OldExpiresAt, now)
	}
	a.notes = append(a.notes, notices{})
	a.noticeKnown = false
	side.stats.mints++
	a.newSecretBodies = append(a.newSecretBodies, r.Notice.Body)
	side.outbox = append(side.outbox, outgoing{kind: noteNewSecret, body: r.Notice.Body, seq: r.Seq})
	s.tracef("%s: Amazon mints secret #%d (expires %s); secret #%d now expires %s", side.app.Name, r.Seq,
		r.Secret.ExpiresAt.Format(time.DateTime), r.Seq-1, r.OldExpiresAt.Format(time.DateTime))
}

func (a *amazonSide) nextNotificationID(seed uint64, idx int) string {
	a.seq++
	x, y := mix(seed^uint64(idx)<<48^uint64(a.seq)), mix(seed^0xabcdef^uint64(a.seq)<<8^uint64(idx))
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(x), uint16(x>>32), uint16(x>>48)&0xfff, uint16(y)&0xfff, y>>16&0xffffffffffff)
}

// dueNotices queues the expiry notices whose time has come and returns when the next one is due;
// it looks only when that time has come or a mint changed the expiries.
func (s *sim) dueNotices(side *appSide, now time.Time) time.Time {
	a := &side.amz
	if !a.noticeKnown || (!a.noticeAt.IsZero() && !now.Before(a.noticeAt)) {
		a.noticeAt, a.noticeKnown = s.sendNotices(side, now), true
	}
	return a.noticeAt
}

// sendNotices queues the expiry notices whose time has come and returns when the next one is due.
func (s *sim) sendNotices(side *appSide, now time.Time) time.Time {
	var next time.Time
	a := &side.amz
	for i := range a.notes {
		n, expiry := &a.notes[i], a.secret(i).ExpiresAt
		for j, off := range noticeOffsets {
			if n.sent&(1<<j) != 0 {
				continue
			}
			at := expiry.Add(-off)
			if now.Before(at) {
				if next.IsZero() || at.Before(next) {
					next = at
				}
				continue
			}
			n.sent |= 1 << j
			notice, err := a.model.ExpiryNotice(now, a.clientID, expiry)
			if err != nil {
				s.violate(side, "harness", "Amazon cannot build an expiry notice: "+err.Error())
				continue
			}
			last := j == len(noticeOffsets)-1
			side.outbox = append(side.outbox, outgoing{kind: noteExpiry, body: notice.Body, seq: i, last: last})
		}
	}
	return next
}
