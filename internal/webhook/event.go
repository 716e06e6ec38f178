// Package webhook tells the services that cache an application's secret that it changed: after
// each promotion it POSTs a signed JSON event (names, version, expiries; never the secret) to the
// application's configured endpoint, retrying with backoff until acknowledged or no longer useful.
// The rotator only hands events off: delivery never blocks or delays a rotation.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator"
)

// The signature scheme (docs/consumers.md repeats it for receivers):
//
//	X-LWA-Rotator-Timestamp: <unix seconds when this attempt was signed>
//	X-LWA-Rotator-Signature: sha256=<lowercase hex of HMAC-SHA256(key, timestamp + "." + body)>
//
// The timestamp is inside the signed string so a receiver can refuse a replayed request whose
// timestamp is old (we suggest 5 minutes), and each retry is signed afresh.
const (
	SignatureHeader = "X-LWA-Rotator-Signature"
	TimestampHeader = "X-LWA-Rotator-Timestamp"
	EventIDHeader   = "X-LWA-Rotator-Event-Id"
	signaturePrefix = "sha256="
)

// Event is the body of one notification. It carries no secret, only what a consumer needs to
// decide to reload and to know how long the old secret still works.
type Event struct {
	// EventID is the same on every retry of one promotion, so receivers can ignore duplicates.
	EventID           string    `json:"eventId"`
	Application       string    `json:"application"`
	SecretID          string    `json:"secretId"`
	VersionID         string    `json:"versionId"`
	ExpiresAt         time.Time `json:"expiresAt"`
	PreviousExpiresAt time.Time `json:"previousExpiresAt"`
	PromotedAt        time.Time `json:"promotedAt"`
}

// eventOf builds the event of a promotion. The id is derived from what identifies the promotion
// (application, secret, version), so a promotion re-announced after a restart keeps its id.
func eventOf(p rotator.Promotion) Event {
	sum := sha256.Sum256([]byte(p.App + "\x00" + p.SecretID + "\x00" + p.VersionID))
	return Event{
		EventID: hex.EncodeToString(sum[:16]), Application: p.App, SecretID: p.SecretID, VersionID: p.VersionID,
		ExpiresAt: p.ExpiresAt.UTC(), PreviousExpiresAt: p.PreviousExpiresAt.UTC(), PromotedAt: p.At.UTC(),
	}
}

// Sign returns the signature header's value for body signed at ts.
func Sign(key []byte, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	m.Write([]byte("."))
	m.Write(body)
	return signaturePrefix + hex.EncodeToString(m.Sum(nil))
}

// Verify is what a receiver does: it checks the signature in constant time and refuses a
// timestamp further than tolerance from now (either way). Tests use it as the receiver would.
func Verify(key []byte, now time.Time, tolerance time.Duration, timestamp, signature string, body []byte) bool {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	ts := time.Unix(sec, 0)
	if ts.Before(now.Add(-tolerance)) || ts.After(now.Add(tolerance)) {
		return false
	}
	return hmac.Equal([]byte(Sign(key, ts, body)), []byte(signature))
}
