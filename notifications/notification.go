// Package notifications reads the two SP-API application notifications (client secret expiry and
// client new secret) from SQS: strict parsing into typed values, and a consumer that deletes a
// message only when its handler says the work is durable.
package notifications

import (
	"time"

	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The notification types this package parses, and the versions Amazon documents for them. Other
// versions are accepted when the payload still carries every field with its type (the secret is
// proven with LWA before promotion, so leniency here cannot promote a bad one) and counted, so a
// format change shows on a dashboard before it can matter.
const (
	TypeExpiry          = "APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY"
	TypeNewSecret       = "APPLICATION_OAUTH_CLIENT_NEW_SECRET"
	NotificationVersion = "1.0"
	PayloadVersion      = "2023-11-30"
)

// Metadata is the notificationMetadata block. NotificationID is the stable key for deduplication
// and for the vault's ClientRequestToken.
type Metadata struct {
	ApplicationID  string
	SubscriptionID string
	NotificationID string
	PublishTime    time.Time
}

// Envelope is what both notification types share.
type Envelope struct {
	Type      string
	EventTime time.Time
	Metadata  Metadata
	// NotificationVersion and PayloadVersion are as sent ("" when absent).
	NotificationVersion, PayloadVersion string
	// ViaSNS: the notification came wrapped in an SNS envelope (a topic fanned out to the queue
	// without raw message delivery).
	ViaSNS bool
}

// UnknownVersion reports a notification whose versions are not the documented ones.
func (e Envelope) UnknownVersion() bool {
	return e.NotificationVersion != NotificationVersion || e.PayloadVersion != PayloadVersion
}

// Meta returns the envelope, so callers can log and deduplicate without a type switch.
func (e Envelope) Meta() Envelope { return e }

// ExpiryNotice says the client secret of ClientID expires at ExpiresAt. It is information, not a
// command: the rotator decides whether to act.
type ExpiryNotice struct {
	Envelope
	ClientID  string
	ExpiresAt time.Time
	// Reason is optional (e.g. "PERIODIC_ROTATION"): nothing depends on it.
	Reason string
}

// NewSecret carries a freshly minted client secret. OldExpiresAt is when the previous secret stops
// working, the authority for how long AWSPREVIOUS must stay usable. Order new secrets by
// ExpiresAt, never by arrival.
type NewSecret struct {
	Envelope
	ClientID     string
	Secret       secret.Value
	ExpiresAt    time.Time
	OldExpiresAt time.Time
}

// Notification is *ExpiryNotice or *NewSecret.
type Notification interface {
	Meta() Envelope
}

var (
	_ Notification = (*ExpiryNotice)(nil)
	_ Notification = (*NewSecret)(nil)
)
