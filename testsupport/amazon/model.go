// Package amazon is an in-memory model of Amazon's side of client-secret rotation: the
// applications Login with Amazon knows, their secrets with their own expiry, grantless tokens,
// the SP-API rotate call with its one-a-minute limit, and the two notification bodies Amazon
// sends. It does no I/O and reads no clock: every operation takes now, and the values Amazon
// makes up come from an injected IDs, so a seeded caller replays exactly. spapisim serves it over
// HTTP; the rotator's simulation drives it directly. A Model is not safe for concurrent use: its
// owner serialises calls.
package amazon

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Amazon's published numbers, which Rules default to. The new-secret lifetime is
// spapi.SecretLifetime.
const (
	OldSecretLifetime = 7 * 24 * time.Hour // the replaced secret's life after a rotate, at most
	RotateInterval    = time.Minute        // one accepted rotate call per application per interval
	TokenLifetime     = time.Hour          // a grantless access token's life
)

// Rules are the durations the model enforces; a zero field takes Amazon's value.
type Rules struct {
	NewSecretLifetime time.Duration
	OldSecretLifetime time.Duration
	RotateInterval    time.Duration
	TokenLifetime     time.Duration
}

func (r Rules) withDefaults() Rules {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&r.NewSecretLifetime, spapi.SecretLifetime)
	def(&r.OldSecretLifetime, OldSecretLifetime)
	def(&r.RotateInterval, RotateInterval)
	def(&r.TokenLifetime, TokenLifetime)
	return r
}

// Errors the operations return; each answer Amazon gives a caller maps to one of them.
var (
	ErrInvalidRegistration = errors.New("invalid registration")
	ErrUnknownApplication  = errors.New("unknown application")
	ErrInvalidClient       = errors.New("invalid client") // unknown client id, or a wrong or expired secret
	ErrUnknownToken        = errors.New("unknown access token")
	ErrTokenExpired        = errors.New("access token expired")
	ErrNotEnrolled         = errors.New("application is not enrolled for rotation notification")
	ErrThrottled           = errors.New("rotate quota exceeded")
	ErrNoQueue             = errors.New("application has no queue for the notification")
)

// Application is what registering an application tells the model. An empty NewSecretQueueURL
// means the application is not enrolled for rotation; an empty ExpiryQueueURL sends expiry
// notices to the new-secret queue.
type Application struct {
	ClientID        string
	ApplicationID   string       // empty: "amzn1.sp.solution." + a made-up UUID
	Secret          secret.Value // the current secret
	SecretExpiresAt time.Time    // zero: now + the new-secret lifetime
	ExpiryQueueURL  string
	// NewSecretQueueURL is where new-secret notifications go; empty: not enrolled.
	NewSecretQueueURL       string
	ExpirySubscriptionID    string // empty: a made-up UUID
	NewSecretSubscriptionID string // empty: a made-up UUID
}

// Enrolled reports whether Amazon accepts rotate calls for the application: only an application
// subscribed to new-secret notifications can be told its new secret.
func (a Application) Enrolled() bool { return a.NewSecretQueueURL != "" }

// Secret is one client secret LWA knows.
type Secret struct {
	Value     secret.Value
	ExpiresAt time.Time // millisecond precision, as the notifications carry it
	// LastAccepted is the last time LWA issued a token for it; zero if never.
	LastAccepted time.Time
}

// Valid reports whether LWA accepts the secret at t.
func (s Secret) Valid(t time.Time) bool { return t.Before(s.ExpiresAt) }

// State is a copy of what the model holds about one application.
type State struct {
	Application
	Secrets     []Secret // oldest first; the last is the newest
	RotateCalls int      // accepted rotate calls
	LastRotate  time.Time
}

type app struct {
	Application
	secrets     []Secret
	rotateCalls int
	lastRotate  time.Time
}

type issued struct {
	clientID  string
	expiresAt time.Time
}

// Model is Amazon's state for a set of applications. Make one with New.
type Model struct {
	rules  Rules
	ids    IDs
	apps   map[string]*app
	tokens map[string]issued
}

// New makes a model with no applications. A nil ids takes RandomIDs.
func New(r Rules, ids IDs) *Model {
	if ids == nil {
		ids = RandomIDs()
	}
	return &Model{rules: r.withDefaults(), ids: ids, apps: map[string]*app{}, tokens: map[string]issued{}}
}

// Rules returns the durations the model enforces, defaults filled in.
func (m *Model) Rules() Rules { return m.rules }

// Clone returns an independent copy sharing only the IDs, so a caller can roll the model back.
func (m *Model) Clone() *Model {
	c := &Model{rules: m.rules, ids: m.ids, apps: make(map[string]*app, len(m.apps)), tokens: make(map[string]issued, len(m.tokens))}
	for id, a := range m.apps {
		cp := *a
		cp.secrets = slices.Clone(a.secrets)
		c.apps[id] = &cp
	}
	for t, iss := range m.tokens {
		c.tokens[t] = iss
	}
	return c
}

// Register adds an application with its current secret.
func (m *Model) Register(now time.Time, a Application) error {
	if a.ClientID == "" || a.Secret.IsZero() {
		return fmt.Errorf("registering an application: client id and secret are required: %w", ErrInvalidRegistration)
	}
	if _, ok := m.apps[a.ClientID]; ok {
		return fmt.Errorf("registering application %s: already registered: %w", a.ClientID, ErrInvalidRegistration)
	}
	if a.ApplicationID == "" {
		a.ApplicationID = "amzn1.sp.solution." + m.ids.UUID()
	}
	if a.ExpirySubscriptionID == "" {
		a.ExpirySubscriptionID = m.ids.UUID()
	}
	if a.NewSecretSubscriptionID == "" {
		a.NewSecretSubscriptionID = m.ids.UUID()
	}
	exp := a.SecretExpiresAt
	if exp.IsZero() {
		exp = now.Add(m.rules.NewSecretLifetime)
	}
	a.SecretExpiresAt = ms(exp)
	m.apps[a.ClientID] = &app{Application: a, secrets: []Secret{{Value: a.Secret, ExpiresAt: a.SecretExpiresAt}}}
	return nil
}

// State returns a copy of what the model holds about clientID.
func (m *Model) State(clientID string) (State, bool) {
	a := m.apps[clientID]
	if a == nil {
		return State{}, false
	}
	return State{Application: a.Application, Secrets: slices.Clone(a.secrets), RotateCalls: a.rotateCalls, LastRotate: a.lastRotate}, true
}

// Secret returns clientID's secret with mint sequence i (0 is the one it was registered with).
func (m *Model) Secret(clientID string, i int) (Secret, bool) {
	a := m.apps[clientID]
	if a == nil || i < 0 || i >= len(a.secrets) {
		return Secret{}, false
	}
	return a.secrets[i], true
}

// Secrets counts the secrets clientID has had, the registered one included.
func (m *Model) Secrets(clientID string) int {
	if a := m.apps[clientID]; a != nil {
		return len(a.secrets)
	}
	return 0
}

// Newest returns clientID's newest secret.
func (m *Model) Newest(clientID string) (Secret, bool) {
	return m.Secret(clientID, m.Secrets(clientID)-1)
}

// Find returns the mint sequence of v among clientID's secrets, or -1 for one LWA never issued.
func (m *Model) Find(clientID string, v secret.Value) int {
	if a := m.apps[clientID]; a != nil {
		for i := range a.secrets {
			if a.secrets[i].Value.Equal(v) {
				return i
			}
		}
	}
	return -1
}

// Valid reports whether LWA accepts sec for clientID at now.
func (m *Model) Valid(now time.Time, clientID string, sec secret.Value) bool {
	s, ok := m.Secret(clientID, m.Find(clientID, sec))
	return ok && s.Valid(now)
}

// ms keeps times at the millisecond precision Amazon's notifications carry, so the expiry the
// model enforces is exactly the one it announces.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }
