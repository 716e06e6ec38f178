package amazon

import (
	"encoding/json"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The notification types, as Amazon names them (notifications.TypeExpiry and TypeNewSecret; a
// test keeps them equal).
const (
	TypeExpiry    = "APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY"
	TypeNewSecret = "APPLICATION_OAUTH_CLIENT_NEW_SECRET"
)

// ExpiryReason is the only clientSecretExpiryReason Amazon documents.
const ExpiryReason = "PERIODIC_ROTATION"

// Notice is one notification Amazon sends, addressed to a queue.
type Notice struct {
	Type           string
	ClientID       string
	NotificationID string
	QueueURL       string
	Time           time.Time
	// Body is the SQS message body. A new-secret body carries the secret in plaintext, as
	// Amazon's does: never log it.
	Body []byte
}

// Meta is what both bodies carry besides their payload. Time is both eventTime and publishTime.
type Meta struct {
	ApplicationID  string
	SubscriptionID string
	NotificationID string
	Time           time.Time
}

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func ts(t time.Time) string { return ms(t).Format(timeLayout) }

type envelope struct {
	NotificationVersion  string   `json:"notificationVersion"`
	NotificationType     string   `json:"notificationType"`
	PayloadVersion       string   `json:"payloadVersion"`
	EventTime            string   `json:"eventTime"`
	Payload              any      `json:"payload"`
	NotificationMetadata metadata `json:"notificationMetadata"`
}

type metadata struct {
	ApplicationID  string `json:"applicationId"`
	SubscriptionID string `json:"subscriptionId"`
	PublishTime    string `json:"publishTime"`
	NotificationID string `json:"notificationId"`
}

type newSecretPayload struct {
	P struct {
		ClientID                  string `json:"clientId"`
		NewClientSecret           string `json:"newClientSecret"`
		NewClientSecretExpiryTime string `json:"newClientSecretExpiryTime"`
		OldClientSecretExpiryTime string `json:"oldClientSecretExpiryTime"`
	} `json:"applicationOAuthClientNewSecret"`
}

type expiryPayload struct {
	P struct {
		ClientID                 string `json:"clientId"`
		ClientSecretExpiryTime   string `json:"clientSecretExpiryTime"`
		ClientSecretExpiryReason string `json:"clientSecretExpiryReason"`
	} `json:"applicationOAuthClientSecretExpiry"`
}

func body(m Meta, typ string, payload any) []byte {
	b, err := json.Marshal(envelope{
		NotificationVersion: "1.0", NotificationType: typ, PayloadVersion: "2023-11-30", EventTime: ts(m.Time),
		Payload:              payload,
		NotificationMetadata: metadata{m.ApplicationID, m.SubscriptionID, ts(m.Time), m.NotificationID},
	})
	if err != nil {
		panic("amazon: marshalling a notification of strings: " + err.Error()) // cannot happen
	}
	return b
}

// NewSecretBody is the APPLICATION_OAUTH_CLIENT_NEW_SECRET body announcing fresh, which
// expires at expiresAt, and the replaced secret's expiry oldExpiresAt. Rotate builds it for
// genuine secrets; a test may build one for a secret Amazon never issued.
func NewSecretBody(m Meta, clientID string, fresh secret.Value, expiresAt, oldExpiresAt time.Time) []byte {
	var p newSecretPayload
	p.P.ClientID = clientID
	p.P.NewClientSecret = fresh.Reveal() // Amazon sends the secret in plaintext; so must the model
	p.P.NewClientSecretExpiryTime = ts(expiresAt)
	p.P.OldClientSecretExpiryTime = ts(oldExpiresAt)
	return body(m, TypeNewSecret, p)
}

// ExpiryBody is the APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY body saying clientID's secret
// expires at expiresAt.
func ExpiryBody(m Meta, clientID string, expiresAt time.Time) []byte {
	var p expiryPayload
	p.P.ClientID = clientID
	p.P.ClientSecretExpiryTime = ts(expiresAt)
	p.P.ClientSecretExpiryReason = ExpiryReason
	return body(m, TypeExpiry, p)
}
