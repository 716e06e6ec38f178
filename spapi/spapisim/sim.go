// Package spapisim imitates Login with Amazon and the SP-API rotate endpoint, the way
// net/http/httptest imitates a server: tests and the local sandbox run the real clients
// against it. It keeps each application's secrets with their own expiry, mints new ones on
// rotate, delivers Amazon's notifications through a Deliverer (SQS in the sandbox), and can
// be told to misbehave (faults) through Go or its JSON control API.
package spapisim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Options configure a Sim. Zero lifetimes take Amazon's published values.
type Options struct {
	Clock             clock.Clock // nil: wall clock
	Deliver           Deliverer   // nil: every delivery fails (and is recorded as failed)
	Log               *zap.Logger // nil: discard
	OldSecretLifetime time.Duration
	NewSecretLifetime time.Duration
	RotateInterval    time.Duration
}

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

// Sim is the simulator. Make one with New; it is safe for concurrent use.
type Sim struct {
	clk      clock.Clock
	deliver  Deliverer
	log      *zap.Logger
	oldLife  time.Duration
	newLife  time.Duration
	interval time.Duration
	ctx      context.Context // lives until Close; delayed deliveries use it
	cancel   context.CancelFunc

	mu       sync.Mutex
	apps     map[string]*app
	tokens   map[string]issued
	received []Request
	faults   []*Fault
	held     []*pending
	notes    []*Notification
}

type cred struct {
	value     secret.Value
	expiresAt time.Time
}

type app struct {
	App
	secrets     []cred // oldest first; the last one is the newest
	lastRotate  time.Time
	rotateCalls int
	subs        map[string]string // notification type → subscription id
}

type issued struct {
	clientID  string
	expiresAt time.Time
}

// New makes a simulator with no applications.
func New(o Options) *Sim {
	s := &Sim{
		clk: o.Clock, deliver: o.Deliver, log: o.Log,
		oldLife: o.OldSecretLifetime, newLife: o.NewSecretLifetime, interval: o.RotateInterval,
		apps: map[string]*app{}, tokens: map[string]issued{},
	}
	if s.clk == nil {
		s.clk = clock.Real{}
	}
	if s.deliver == nil {
		s.deliver = noDeliverer{}
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.oldLife <= 0 {
		s.oldLife = 7 * 24 * time.Hour
	}
	if s.newLife <= 0 {
		s.newLife = 180 * 24 * time.Hour
	}
	if s.interval <= 0 {
		s.interval = time.Minute
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Close stops the goroutines waiting to deliver delayed notifications; those are discarded.
func (s *Sim) Close() { s.cancel() }

// Register adds an application with its current secret.
func (s *Sim) Register(a App) error {
	if a.ClientID == "" || a.Secret.IsZero() {
		return errors.New("registering an application: client id and secret are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[a.ClientID]; ok {
		return fmt.Errorf("registering application %s: already registered", a.ClientID)
	}
	if a.ApplicationID == "" {
		a.ApplicationID = "amzn1.sp.solution." + newUUID()
	}
	exp := a.SecretExpiresAt
	if exp.IsZero() {
		exp = s.clk.Now().Add(s.newLife)
	}
	s.apps[a.ClientID] = &app{
		App:     a,
		secrets: []cred{{value: a.Secret, expiresAt: msUTC(exp)}},
		subs:    map[string]string{typeExpiry: newUUID(), typeNewSecret: newUUID()},
	}
	s.log.Info("simulator registered application", zap.String("client_id", a.ClientID),
		zap.String("application_id", a.ApplicationID), zap.String("secret_fingerprint", Fingerprint(a.Secret)))
	return nil
}

// Valid reports whether LWA would accept sec for clientID now.
func (s *Sim) Valid(clientID string, sec secret.Value) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[clientID]
	return a != nil && a.valid(sec, s.clk.Now())
}

// Newest returns the newest secret of clientID and its expiry.
func (s *Sim) Newest(clientID string) (secret.Value, time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[clientID]
	if a == nil {
		return secret.Value{}, time.Time{}, false
	}
	c := a.secrets[len(a.secrets)-1]
	return c.value, c.expiresAt, true
}

// RotateCalls counts the accepted (204) rotate calls for clientID.
func (s *Sim) RotateCalls(clientID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[clientID]; a != nil {
		return a.rotateCalls
	}
	return 0
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

func (a *app) valid(sec secret.Value, now time.Time) bool {
	for _, c := range a.secrets {
		if c.value.Equal(sec) && now.Before(c.expiresAt) {
			return true
		}
	}
	return false
}

func (s *Sim) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received = append(s.received, r)
}

// msUTC keeps times at the millisecond precision Amazon's notifications carry, so the expiry
// the simulator enforces is exactly the one it announces.
func msUTC(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
