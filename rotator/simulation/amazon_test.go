package simulation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Amazon's published numbers.
const (
	secretLifetime = 180 * 24 * time.Hour
	oldSecretGrace = 7 * 24 * time.Hour
	rotateInterval = time.Minute
	tokenLifetime  = time.Hour
	day            = 24 * time.Hour
	msgTime        = "2006-01-02T15:04:05.000Z07:00"
)

// noticeOffsets: Amazon sends expiry notices this long before a secret expires.
var noticeOffsets = [...]time.Duration{90 * day, 60 * day, 30 * day, 15 * day, 7 * day, 1 * day}

// minted is one client secret LWA knows, with its own expiry.
type minted struct {
	value     string
	mintedAt  time.Time
	expiry    time.Time
	noticed   uint8     // bit i: the notice noticeOffsets[i] before expiry was sent or skipped
	validated time.Time // the last time LWA minted a token with it
	announced bool      // an expiry notice about it reached a queue
}

type issuedToken struct {
	value string
	at    time.Time
}

// amazonApp is LWA's and SP-API's view of one application. secrets[i] has mint sequence i;
// secrets[0] is the one the run starts with.
type amazonApp struct {
	clientID, appID string
	secrets         []minted
	lastRotate      time.Time
	tokens          []issuedToken
	seq             int      // ids handed out (tokens, notifications, request ids)
	newSecretBodies [][]byte // every genuine new-secret notification, for replays
}

func (a amazonApp) clone() amazonApp {
	a.secrets = slices.Clone(a.secrets)
	a.tokens = slices.Clone(a.tokens)
	a.newSecretBodies = slices.Clone(a.newSecretBodies)
	return a
}

// find returns the mint sequence of value, or -1 for a secret LWA never issued.
func (a *amazonApp) find(value string) int {
	for i := range a.secrets {
		if a.secrets[i].value == value {
			return i
		}
	}
	return -1
}

func (a *amazonApp) valid(seq int, at time.Time) bool {
	return seq >= 0 && seq < len(a.secrets) && at.Before(a.secrets[seq].expiry)
}

// skipPassed marks the notices whose time has already gone as sent, as Amazon would not send
// a 90-day notice for a secret that now has 7 days left.
func (m *minted) skipPassed(now time.Time) {
	for i, off := range noticeOffsets {
		if m.expiry.Add(-off).Before(now) {
			m.noticed |= 1 << i
		}
	}
}

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
		seq := a.find(sec.Reveal())
		if !a.valid(seq, now) {
			side.stats.rejected++
			return invalidClient(fmt.Sprintf("lwa-%d-%d", side.idx, a.seq))
		}
		a.secrets[seq].validated = now
		side.stats.validations++
		v := fmt.Sprintf("Atza|sim.%d.%d", side.idx, a.seq)
		a.tokens = slices.DeleteFunc(a.tokens, func(t issuedToken) bool { return now.Sub(t.at) >= tokenLifetime })
		a.tokens = append(a.tokens, issuedToken{v, now})
		tok = spapi.Token{AccessToken: secret.New(v), ExpiresIn: tokenLifetime, Scope: "sellingpartnerapi::client_credential:rotation"}
		return nil
	}, nil)
	return tok, err
}

type fakeSPAPI struct{ s *sim }

func (f fakeSPAPI) RotateClientSecret(_ context.Context, clientID string, _ spapi.Region, tok secret.Value) (string, error) {
	side, ok := f.s.byClient[clientID]
	if !ok {
		return "", &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusForbidden, Kind: spapi.ErrUnauthorized}
	}
	var reqID string
	err := f.s.call(side, svcSPAPI, "rotateClientSecret", func() error {
		now, a := f.s.clk.Now(), &side.amz
		a.seq++
		reqID = fmt.Sprintf("spapi-%d-%d", side.idx, a.seq)
		if !slices.ContainsFunc(a.tokens, func(t issuedToken) bool { return t.value == tok.Reveal() && now.Sub(t.at) < tokenLifetime }) {
			return &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusForbidden, Code: "Unauthorized", RequestID: reqID, Kind: spapi.ErrUnauthorized}
		}
		if !a.lastRotate.IsZero() && now.Sub(a.lastRotate) < rotateInterval {
			side.stats.throttled++
			return &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusTooManyRequests, Code: "QuotaExceeded", RequestID: reqID, Kind: spapi.ErrThrottled}
		}
		a.lastRotate = now
		f.s.mint(side, now)
		return nil
	}, nil)
	if err == nil {
		f.s.onReportedRotate(side)
	}
	return reqID, err
}

// mint issues a new secret: the previous newest now dies within 7 days, and the new one goes out
// as an APPLICATION_OAUTH_CLIENT_NEW_SECRET notification.
func (s *sim) mint(side *appSide, now time.Time) {
	a := &side.amz
	prev := &a.secrets[len(a.secrets)-1]
	if grace := now.Add(oldSecretGrace).Truncate(time.Millisecond); grace.Before(prev.expiry) {
		prev.expiry = grace
		prev.skipPassed(now)
	}
	seq := len(a.secrets)
	m := minted{
		value:    fmt.Sprintf("amzn1.oa2-cs.v1.%016x%016x", mix(s.seed^uint64(side.idx)<<40^uint64(seq)), mix(s.seed+uint64(seq))),
		mintedAt: now,
		expiry:   now.Add(secretLifetime).Truncate(time.Millisecond),
	}
	a.secrets = append(a.secrets, m)
	side.stats.mints++
	body := s.newSecretBody(side, m.value, a.nextNotificationID(s.seed, side.idx), m.expiry, prev.expiry, now)
	a.newSecretBodies = append(a.newSecretBodies, body)
	side.outbox = append(side.outbox, outgoing{kind: noteNewSecret, body: body, seq: seq})
	s.tracef("%s: Amazon mints secret #%d (expires %s); secret #%d now expires %s", side.app.Name, seq,
		m.expiry.Format(time.DateTime), seq-1, prev.expiry.Format(time.DateTime))
}

func (a *amazonApp) nextNotificationID(seed uint64, idx int) string {
	a.seq++
	x, y := mix(seed^uint64(idx)<<48^uint64(a.seq)), mix(seed^0xabcdef^uint64(a.seq)<<8^uint64(idx))
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", uint32(x), uint16(x>>32), uint16(x>>48)&0xfff, uint16(y)&0xfff, y>>16&0xffffffffffff)
}

type metadata struct {
	ApplicationID  string `json:"applicationId"`
	SubscriptionID string `json:"subscriptionId"`
	PublishTime    string `json:"publishTime"`
	NotificationID string `json:"notificationId"`
}

type envelope struct {
	NotificationVersion string         `json:"notificationVersion"`
	NotificationType    string         `json:"notificationType"`
	PayloadVersion      string         `json:"payloadVersion"`
	EventTime           string         `json:"eventTime"`
	Payload             map[string]any `json:"payload"`
	Metadata            metadata       `json:"notificationMetadata"`
}

func (s *sim) body(side *appSide, typ, key string, inner map[string]string, notificationID string, now time.Time) []byte {
	b, err := json.Marshal(envelope{
		NotificationVersion: "1.0", NotificationType: typ, PayloadVersion: "2023-11-30",
		EventTime: now.UTC().Format(msgTime),
		Payload:   map[string]any{key: inner},
		Metadata: metadata{ApplicationID: side.amz.appID, SubscriptionID: fmt.Sprintf("sub-%d", side.idx),
			PublishTime: now.UTC().Format(msgTime), NotificationID: notificationID},
	})
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	return b
}

func (s *sim) newSecretBody(side *appSide, value, notificationID string, expiry, oldExpiry, now time.Time) []byte {
	return s.body(side, "APPLICATION_OAUTH_CLIENT_NEW_SECRET", "applicationOAuthClientNewSecret", map[string]string{
		"clientId": side.app.ClientID, "newClientSecret": value,
		"newClientSecretExpiryTime": expiry.UTC().Format(msgTime), "oldClientSecretExpiryTime": oldExpiry.UTC().Format(msgTime),
	}, notificationID, now)
}

func (s *sim) expiryBody(side *appSide, expiry, now time.Time) []byte {
	return s.body(side, "APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY", "applicationOAuthClientSecretExpiry", map[string]string{
		"clientId": side.app.ClientID, "clientSecretExpiryTime": expiry.UTC().Format(msgTime),
		"clientSecretExpiryReason": "PERIODIC_ROTATION",
	}, side.amz.nextNotificationID(s.seed, side.idx), now)
}

// dueNotices queues the expiry notices whose time has come and returns when the next one is due.
func (s *sim) dueNotices(side *appSide, now time.Time) time.Time {
	var next time.Time
	for i := range side.amz.secrets {
		m := &side.amz.secrets[i]
		for j, off := range noticeOffsets {
			if m.noticed&(1<<j) != 0 {
				continue
			}
			at := m.expiry.Add(-off)
			if now.Before(at) {
				if next.IsZero() || at.Before(next) {
					next = at
				}
				continue
			}
			m.noticed |= 1 << j
			last := j == len(noticeOffsets)-1
			side.outbox = append(side.outbox, outgoing{kind: noteExpiry, body: s.expiryBody(side, m.expiry, now), seq: i, last: last})
		}
	}
	return next
}
