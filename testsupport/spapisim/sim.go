// Package spapisim imitates Login with Amazon and the SP-API rotate endpoint, the way
// net/http/httptest imitates a server: tests and the local sandbox run the real clients
// against it. It keeps each application's secrets with their own expiry, mints new ones on
// rotate, delivers Amazon's notifications through a Deliverer (SQS in the sandbox), and can
// be told to misbehave (faults) through Go or its JSON control API.
package spapisim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/testsupport/amazon"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Options configure a Sim. Zero lifetimes take Amazon's published values (package amazon).
type Options struct {
	Clock             clock.Clock // nil: wall clock
	Deliver           Deliverer   // nil: every delivery fails (and is recorded as failed)
	Log               *zap.Logger // nil: discard
	OldSecretLifetime time.Duration
	NewSecretLifetime time.Duration
	// RotateInterval is the least time between two accepted rotate calls of one application
	// (zero: Amazon's minute). Negative lifts the limit, so that a test counting accepted calls
	// sees every call a client makes: only two calls at one instant of Clock are still refused.
	RotateInterval time.Duration
	IDs            amazon.IDs // nil: random, as Amazon's
}

// unlimited stands for "no limit" in the model, which reads zero or less as Amazon's minute: the
// least interval it keeps, which no two calls made at different instants fall within.
const unlimited = time.Nanosecond

// App is one registered SP-API application. ExpiryQueueURL may be empty (expiry notices then go
// to NewSecretQueueURL); an empty NewSecretQueueURL means "not enrolled", so rotate answers 400.
type App struct {
	ClientID          string
	ApplicationID     string // empty: one is made up
	Secret            secret.Value
	SecretExpiresAt   time.Time // zero: now + NewSecretLifetime
	ExpiryQueueURL    string
	NewSecretQueueURL string
}

// Request is one call the simulator answered on its token or rotate endpoint.
type Request struct {
	Time      time.Time `json:"time"`
	Endpoint  string    `json:"endpoint"` // "token" or "rotate"
	ClientID  string    `json:"clientId"`
	Status    int       `json:"status"` // 0: the client went away before an answer
	RequestID string    `json:"requestId"`
}

// Sim is the simulator: an HTTP shell, faults and a control API over amazon.Model, which holds
// Amazon's behaviour. Make one with New; it is safe for concurrent use.
type Sim struct {
	clk     clock.Clock
	deliver Deliverer
	log     *zap.Logger
	ids     amazon.IDs
	ctx     context.Context // lives until Close; delayed deliveries use it
	cancel  context.CancelFunc

	mu       sync.Mutex
	model    *amazon.Model
	received []Request
	faults   []*Fault
	held     []*pending
	notes    []*Notification
}

// New makes a simulator with no applications.
func New(o Options) *Sim {
	s := &Sim{clk: o.Clock, deliver: o.Deliver, log: o.Log, ids: o.IDs}
	if s.clk == nil {
		s.clk = clock.Real{}
	}
	if s.deliver == nil {
		s.deliver = noDeliverer{}
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.ids == nil {
		s.ids = amazon.RandomIDs()
	}
	interval := o.RotateInterval
	if interval < 0 {
		interval = unlimited
	}
	s.model = amazon.New(amazon.Rules{
		NewSecretLifetime: o.NewSecretLifetime, OldSecretLifetime: o.OldSecretLifetime, RotateInterval: interval,
	}, s.ids)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Close stops the goroutines waiting to deliver delayed notifications; those are discarded.
func (s *Sim) Close() { s.cancel() }

// Register adds an application with its current secret.
func (s *Sim) Register(a App) error {
	s.mu.Lock()
	err := s.model.Register(s.clk.Now(), amazon.Application{
		ClientID: a.ClientID, ApplicationID: a.ApplicationID, Secret: a.Secret, SecretExpiresAt: a.SecretExpiresAt,
		ExpiryQueueURL: a.ExpiryQueueURL, NewSecretQueueURL: a.NewSecretQueueURL,
	})
	st, _ := s.model.State(a.ClientID)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.log.Info("simulator registered application", zap.String("client_id", a.ClientID),
		zap.String("application_id", st.ApplicationID), zap.String("secret_fingerprint", Fingerprint(a.Secret)))
	return nil
}

// Valid reports whether LWA would accept sec for clientID now.
func (s *Sim) Valid(clientID string, sec secret.Value) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.model.Valid(s.clk.Now(), clientID, sec)
}

// Newest returns the newest secret of clientID and its expiry.
func (s *Sim) Newest(clientID string) (secret.Value, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.model.Newest(clientID)
	return c.Value, c.ExpiresAt, ok
}

// RotateCalls counts the accepted (204) rotate calls for clientID.
func (s *Sim) RotateCalls(clientID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, _ := s.model.State(clientID)
	return st.RotateCalls
}

// Received lists every token and rotate request, oldest first.
func (s *Sim) Received() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.received...)
}

// Fingerprint identifies a secret without revealing it: the first 16 hex digits of the
// SHA-256 of its plaintext.
func Fingerprint(v secret.Value) string {
	sum := sha256.Sum256([]byte(v.Reveal()))
	return hex.EncodeToString(sum[:])[:16]
}

func (s *Sim) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = append(s.received, r)
}
