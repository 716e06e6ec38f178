package lwacreds

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// DefaultRefreshInterval is how often the Store re-reads AWSCURRENT when nothing has gone wrong:
// far inside the seven days the old secret keeps working after a rotation (see the package
// documentation).
const DefaultRefreshInterval = time.Hour

// MaxRefreshInterval bounds StoreOptions.RefreshInterval: half the old secret's seven-day life,
// so that even an unlucky schedule re-reads the secret at least once before the old one dies.
const MaxRefreshInterval = 84 * time.Hour

// failedReadBackoff spaces out reads while Secrets Manager is failing, so that many callers do
// not turn an outage into a storm of reads; the cached secret keeps serving meanwhile.
const failedReadBackoff = 30 * time.Second

// readTimeout bounds one shared read. It is not the caller's deadline: the read serves every
// waiting caller, so one caller giving up must not fail it for the others.
const readTimeout = 30 * time.Second

// ErrNoUsableCredentials: LWA refused every secret the Store has that could still work.
var ErrNoUsableCredentials = errors.New("lwacreds: no usable client credentials")

// SecretsManager is the one Secrets Manager call the Store makes; *secretsmanager.Client has it.
// The reader needs only secretsmanager:GetSecretValue (and kms:Decrypt on the secret's key).
type SecretsManager interface {
	GetSecretValue(ctx context.Context, params *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Credentials are one client id and secret, and where they came from.
type Credentials struct {
	ClientID     string
	ClientSecret secret.Value
	VersionID    string // the Secrets Manager version id
	Stage        string // vault.StageCurrent or vault.StagePrevious
	// ExpiresAt is when Amazon stops accepting the secret, as recorded by the daemon; zero when
	// not recorded. For AWSPREVIOUS it is the shortened expiry the rotation gave it.
	ExpiresAt time.Time

	gen uint64 // the Store generation that handed these out
}

// CredentialSource is what a TokenSource needs; *Store is one. Rejected is told that LWA
// answered invalid_client for c, and returns the credentials to try instead.
type CredentialSource interface {
	Credentials(ctx context.Context) (Credentials, error)
	Rejected(ctx context.Context, c Credentials) (Credentials, error)
}

// StoreOptions configure a Store. Every field is optional.
type StoreOptions struct {
	// Format is the key naming the daemon was configured with; both are read either way. Empty
	// means vault.FormatDefault.
	Format vault.Format
	// RefreshInterval is how long a read of AWSCURRENT is trusted. Zero means
	// DefaultRefreshInterval; more than MaxRefreshInterval is refused.
	RefreshInterval time.Duration
	// Now reads the time; nil means time.Now.
	Now func() time.Time
	// OnReadError is told about a failed read that was hidden from the caller because the cached
	// secret could still be served. nil ignores them; wire it to a log or metric to see an
	// outage (or lost permission) before the cached secret dies. The error holds no secret.
	OnReadError func(error)
}

// Store caches one application's credentials from one Secrets Manager secret. It is safe for
// concurrent use; at most one read of the secret is in flight at a time.
type Store struct {
	sm       SecretsManager
	secretID string
	format   vault.Format
	interval time.Duration
	now      func() time.Time
	onErr    func(error)

	mu        sync.Mutex
	cur       *version // nil until the first successful read
	prev      *version // AWSPREVIOUS, read only when needed; nil otherwise
	gen       uint64   // counts successful reads of AWSCURRENT
	fetchedAt time.Time
	failedAt  time.Time
	lastErr   error
	refused   map[string]bool // version ids LWA refused since the last periodic read
	flight    *flight
}

type version struct {
	id  string
	rec vault.Record
}

// flight is one shared read; done closes when it has finished and the Store holds its result.
type flight struct {
	done chan struct{}
	err  error
}

// NewStore makes a Store for secretID (a name or ARN). No read happens until the first call.
func NewStore(sm SecretsManager, secretID string, o StoreOptions) (*Store, error) {
	if sm == nil {
		return nil, errors.New("lwacreds: making a store: Secrets Manager client is nil")
	}
	if secretID == "" {
		return nil, errors.New("lwacreds: making a store: secret id is empty")
	}
	format := o.Format
	if format == "" {
		format = vault.FormatDefault
	}
	if _, err := vault.ParseFormat(string(format)); err != nil {
		return nil, fmt.Errorf("lwacreds: making a store: format: %w", err)
	}
	interval := o.RefreshInterval
	switch {
	case interval == 0:
		interval = DefaultRefreshInterval
	case interval < 0:
		return nil, errors.New("lwacreds: making a store: refresh interval is negative")
	case interval > MaxRefreshInterval:
		return nil, fmt.Errorf("lwacreds: making a store: refresh interval %v is longer than %v, too close to the 7 days the old secret lives", interval, MaxRefreshInterval)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	onErr := o.OnReadError
	if onErr == nil {
		onErr = func(error) {}
	}
	return &Store{
		sm: sm, secretID: secretID, format: format, interval: interval, now: now, onErr: onErr,
		refused: map[string]bool{},
	}, nil
}

// Credentials returns the credentials to use now: AWSCURRENT, re-read once the refresh interval
// has passed, or AWSPREVIOUS while LWA refuses AWSCURRENT and the previous one is alive. When a
// re-read fails but a cached secret exists, the cached one is returned and OnReadError told.
func (s *Store) Credentials(ctx context.Context) (Credentials, error) {
	s.mu.Lock()
	now := s.now()
	if s.cur != nil && (now.Before(s.fetchedAt.Add(s.interval)) || now.Before(s.failedAt.Add(failedReadBackoff))) {
		c, _ := s.pickLocked(now, false)
		s.mu.Unlock()
		return c, nil
	}
	if s.cur == nil && s.lastErr != nil && now.Before(s.failedAt.Add(failedReadBackoff)) {
		err := s.lastErr
		s.mu.Unlock()
		return Credentials{}, err
	}
	f := s.startLocked(ctx, true)
	s.mu.Unlock()

	if err := wait(ctx, f); err != nil {
		return Credentials{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return Credentials{}, f.err
	}
	c, _ := s.pickLocked(s.now(), false)
	return c, nil
}

// Rejected records that LWA answered invalid_client for c and returns what to try next: a
// newer AWSCURRENT if the secret has changed (read at once, not at the next interval), else
// AWSPREVIOUS while it is alive. ErrNoUsableCredentials means nothing is left to try.
func (s *Store) Rejected(ctx context.Context, c Credentials) (Credentials, error) {
	s.mu.Lock()
	if c.VersionID != "" {
		s.refused[c.VersionID] = true
	}
	if c.gen < s.gen { // read again since c was handed out: maybe nothing more to read
		if next, ok := s.pickLocked(s.now(), true); ok {
			s.mu.Unlock()
			return next, nil
		}
	}
	f := s.startLocked(ctx, false)
	s.mu.Unlock()

	var readErr error
	// Two rounds at most: a read that was already in flight when c was refused may not have
	// loaded AWSPREVIOUS, which only this refusal made worth reading.
	for round := 0; round < 2; round++ {
		if err := wait(ctx, f); err != nil {
			return Credentials{}, err
		}
		readErr = f.err
		s.mu.Lock()
		next, ok := s.pickLocked(s.now(), true)
		if ok || !s.previousWantedLocked(s.now()) || round == 1 {
			s.mu.Unlock()
			if ok {
				return next, nil
			}
			break
		}
		f = s.startLocked(ctx, false)
		s.mu.Unlock()
	}
	if readErr != nil {
		return Credentials{}, fmt.Errorf("lwacreds: after LWA refused client %s (version %s): %w", c.ClientID, c.VersionID, errors.Join(ErrNoUsableCredentials, readErr))
	}
	return Credentials{}, fmt.Errorf("lwacreds: after LWA refused client %s (version %s): %w", c.ClientID, c.VersionID, ErrNoUsableCredentials)
}

// pickLocked chooses among the cached versions. strict leaves out every refused version;
// otherwise AWSCURRENT is the answer of last resort.
func (s *Store) pickLocked(now time.Time, strict bool) (Credentials, bool) {
	if s.cur == nil {
		return Credentials{}, false
	}
	if !s.refused[s.cur.id] {
		return s.credentialsLocked(s.cur, vault.StageCurrent, s.cur.rec.ExpiresAt), true
	}
	if s.prev != nil && !s.refused[s.prev.id] && s.previousWantedLocked(now) {
		return s.credentialsLocked(s.prev, vault.StagePrevious, s.cur.rec.PreviousExpiresAt), true
	}
	if strict {
		return Credentials{}, false
	}
	return s.credentialsLocked(s.cur, vault.StageCurrent, s.cur.rec.ExpiresAt), true
}

// previousWantedLocked: AWSCURRENT was refused and its record says the previous secret lives.
func (s *Store) previousWantedLocked(now time.Time) bool {
	if s.cur == nil || !s.refused[s.cur.id] {
		return false
	}
	exp := s.cur.rec.PreviousExpiresAt
	return !exp.IsZero() && now.Before(exp)
}

func (s *Store) credentialsLocked(v *version, stage string, expires time.Time) Credentials {
	return Credentials{
		ClientID: v.rec.ClientID, ClientSecret: v.rec.ClientSecret, VersionID: v.id,
		Stage: stage, ExpiresAt: expires, gen: s.gen,
	}
}

// startLocked joins the read in flight or starts one. A periodic read forgets every refusal
// first, so a secret refused once (a new secret not yet propagated) is tried again.
func (s *Store) startLocked(ctx context.Context, periodic bool) *flight {
	if s.flight != nil {
		return s.flight
	}
	if periodic {
		clear(s.refused)
	}
	f := &flight{done: make(chan struct{})}
	s.flight = f
	go s.read(context.WithoutCancel(ctx), f)
	return f
}

// read runs without the lock: it reads AWSCURRENT, and AWSPREVIOUS when a refusal of the current
// version makes the previous one worth having, then publishes both.
func (s *Store) read(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	defer close(f.done)

	cur, err := s.get(ctx, vault.StageCurrent)
	var prev *version
	if err == nil {
		s.mu.Lock()
		want := s.refused[cur.id] && !cur.rec.PreviousExpiresAt.IsZero() && s.now().Before(cur.rec.PreviousExpiresAt)
		s.mu.Unlock()
		if want {
			p, perr := s.get(ctx, vault.StagePrevious)
			switch {
			case perr != nil:
				s.onErr(perr)
				f.err = perr
			case p.rec.ClientID != cur.rec.ClientID:
				f.err = fmt.Errorf("lwacreds: reading secret %s: AWSPREVIOUS holds client %s, not %s", s.secretID, p.rec.ClientID, cur.rec.ClientID)
				s.onErr(f.err)
			default:
				prev = &p
			}
		}
	}

	s.mu.Lock()
	s.flight = nil
	if err != nil {
		f.err = err
		s.failedAt, s.lastErr = s.now(), err
		hidden := s.cur != nil // the caller gets the cached secret, so only the hook hears of it
		s.mu.Unlock()
		if hidden {
			s.onErr(err)
		}
		return
	}
	s.cur, s.prev = &cur, prev
	s.gen++
	s.fetchedAt, s.failedAt, s.lastErr = s.now(), time.Time{}, nil
	s.mu.Unlock()
}

func (s *Store) get(ctx context.Context, stage string) (version, error) {
	out, err := s.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(s.secretID), VersionStage: aws.String(stage),
	})
	if err != nil {
		return version{}, fmt.Errorf("lwacreds: reading secret %s (%s): %w", s.secretID, stage, err)
	}
	var raw []byte
	switch {
	case out.SecretString != nil:
		raw = []byte(*out.SecretString)
	case out.SecretBinary != nil:
		raw = out.SecretBinary
	}
	rec, err := vault.Decode(raw, s.format)
	if err != nil {
		return version{}, fmt.Errorf("lwacreds: reading secret %s (%s): %w", s.secretID, stage, err)
	}
	return version{id: aws.ToString(out.VersionId), rec: rec}, nil
}

// wait returns when the read is done or the caller gives up, whichever is first.
func wait(ctx context.Context, f *flight) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("lwacreds: waiting for the secret to be read: %w", ctx.Err())
	}
}
