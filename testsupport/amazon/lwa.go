package amazon

import (
	"fmt"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Token is a grantless access token LWA issued.
type Token struct {
	Value     string
	ClientID  string
	ExpiresAt time.Time
}

// Token issues a grantless token to clientID if sec is one of its secrets and valid at now.
// The HTTP shell checks grant type and scope; this is the part that depends on state.
func (m *Model) Token(now time.Time, clientID string, sec secret.Value) (Token, error) {
	a := m.apps[clientID]
	i := m.Find(clientID, sec)
	if a == nil || i < 0 || !a.secrets[i].Valid(now) {
		return Token{}, fmt.Errorf("issuing a token for %s: %w", clientID, ErrInvalidClient)
	}
	a.secrets[i].LastAccepted = now
	for t, iss := range m.tokens { // keep the map from growing over a long run
		if !now.Before(iss.expiresAt) {
			delete(m.tokens, t)
		}
	}
	tok := Token{Value: m.ids.AccessToken(), ClientID: clientID, ExpiresAt: now.Add(m.rules.TokenLifetime)}
	m.tokens[tok.Value] = issued{clientID: clientID, expiresAt: tok.ExpiresAt}
	return tok, nil
}

// TokenOwner returns the client id token was issued to, expired or not, while the model still
// remembers it.
func (m *Model) TokenOwner(token string) (string, bool) {
	iss, ok := m.tokens[token]
	return iss.clientID, ok
}

// Rotation is the outcome of an accepted rotate call.
type Rotation struct {
	ClientID     string
	Secret       Secret    // the one minted
	Seq          int       // its mint sequence
	OldExpiresAt time.Time // the replaced secret's expiry, shortened to at most the old-secret lifetime
	Notice       Notice    // APPLICATION_OAUTH_CLIENT_NEW_SECRET for the new-secret queue
}

// Rotate is the SP-API rotate call made with an access token: it mints a new secret for the
// token's application, shortens the previously newest secret's life and builds the new-secret
// notification. The caller delivers Notice; a failed delivery does not undo the rotation.
func (m *Model) Rotate(now time.Time, token string) (Rotation, error) {
	iss, ok := m.tokens[token]
	if !ok {
		return Rotation{}, fmt.Errorf("rotating a client secret: %w", ErrUnknownToken)
	}
	if !now.Before(iss.expiresAt) {
		return Rotation{}, fmt.Errorf("rotating the client secret of %s: %w", iss.clientID, ErrTokenExpired)
	}
	a := m.apps[iss.clientID]
	if !a.Enrolled() {
		return Rotation{}, fmt.Errorf("rotating the client secret of %s: %w", iss.clientID, ErrNotEnrolled)
	}
	if a.rotateCalls > 0 && now.Before(a.lastRotate.Add(m.rules.RotateInterval)) {
		return Rotation{}, fmt.Errorf("rotating the client secret of %s: %w", iss.clientID, ErrThrottled)
	}
	prev := &a.secrets[len(a.secrets)-1]
	if grace := ms(now.Add(m.rules.OldSecretLifetime)); grace.Before(prev.ExpiresAt) {
		prev.ExpiresAt = grace
	}
	fresh := Secret{Value: m.ids.ClientSecret(), ExpiresAt: ms(now.Add(m.rules.NewSecretLifetime))}
	a.secrets = append(a.secrets, fresh)
	a.rotateCalls++
	a.lastRotate = now
	r := Rotation{ClientID: a.ClientID, Secret: fresh, Seq: len(a.secrets) - 1, OldExpiresAt: prev.ExpiresAt}
	id := m.ids.UUID()
	r.Notice = Notice{
		Type: TypeNewSecret, ClientID: a.ClientID, NotificationID: id, QueueURL: a.NewSecretQueueURL, Time: now,
		Body: NewSecretBody(Meta{ApplicationID: a.ApplicationID, SubscriptionID: a.NewSecretSubscriptionID, NotificationID: id, Time: now},
			a.ClientID, fresh.Value, fresh.ExpiresAt, prev.ExpiresAt),
	}
	return r, nil
}

// ExpiryNotice builds APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY for clientID, addressed to its
// expiry queue (its new-secret queue when it has none). A zero expiresAt announces the newest
// secret's expiry.
func (m *Model) ExpiryNotice(now time.Time, clientID string, expiresAt time.Time) (Notice, error) {
	a := m.apps[clientID]
	if a == nil {
		return Notice{}, fmt.Errorf("building an expiry notice for %s: %w", clientID, ErrUnknownApplication)
	}
	queue := a.ExpiryQueueURL
	if queue == "" {
		queue = a.NewSecretQueueURL
	}
	if queue == "" {
		return Notice{}, fmt.Errorf("building an expiry notice for %s: %w", clientID, ErrNoQueue)
	}
	if expiresAt.IsZero() {
		expiresAt = a.secrets[len(a.secrets)-1].ExpiresAt
	}
	id := m.ids.UUID()
	return Notice{
		Type: TypeExpiry, ClientID: clientID, NotificationID: id, QueueURL: queue, Time: now,
		Body: ExpiryBody(Meta{ApplicationID: a.ApplicationID, SubscriptionID: a.ExpirySubscriptionID, NotificationID: id, Time: now},
			clientID, expiresAt),
	}, nil
}
