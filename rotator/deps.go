package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator/window"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Vault is the part of vault.Store the rotator drives: one snapshot read per decision, and
// writes that take what they need from that snapshot instead of describing the secret again.
type Vault interface {
	Read(ctx context.Context, secretID string) (vault.Snapshot, error)
	// ReadListed answers for many secrets at once where it can; each snapshot it returns is
	// Listed and may lag, so a pass concludes only "nothing to do" from it. An id it leaves out
	// is read with Read.
	ReadListed(ctx context.Context, secretIDs []string) (map[string]vault.Snapshot, error)
	StageOn(ctx context.Context, snap vault.Snapshot, token string, r vault.Record) error
	PromoteOn(ctx context.Context, snap vault.Snapshot, versionID string) error
	ClearPendingOn(ctx context.Context, snap vault.Snapshot, versionID string, staged bool) error
	SaveChanges(ctx context.Context, secretID string, was, st vault.RotationState) error
	// ClaimOn claims the rotation snap shows due, and returns the claim that holds it: c, or
	// the one another replica (or an earlier try of this process) wrote first.
	ClaimOn(ctx context.Context, snap vault.Snapshot, c vault.Claim) (vault.Claim, error)
	// ClearRequest removes an operator's rotation request once a rotate call for it was accepted.
	ClearRequest(ctx context.Context, secretID string) error
	// Requests and LoadState are the request watch's: the states of the secrets carrying a
	// request, in one call (vault.ErrListDenied when that cannot be had), or one secret's tags.
	Requests(ctx context.Context, secretIDs []string) (map[string]vault.RotationState, error)
	LoadState(ctx context.Context, secretID string) (vault.RotationState, error)
}

// TokenMinter proves a secret works by minting an LWA token with it (no cache in between).
type TokenMinter interface {
	Token(ctx context.Context, clientID string, clientSecret secret.Value) (spapi.Token, error)
}

// SecretRotator asks Amazon for a new client secret.
type SecretRotator interface {
	RotateClientSecret(ctx context.Context, clientID string, region spapi.Region, accessToken secret.Value) (string, error)
}

// Observer is told about every rotation outcome worth a counter, and about every read of the
// request watch (a listing, or one secret's tags), so that a watch that cannot read shows.
type Observer interface {
	Rotation(app string, result Result)
	RequestWatchRead(at time.Time, err error)
}

// App is one configured application.
type App struct {
	Name          string
	ClientID      string
	Region        spapi.Region
	SecretID      string
	ApplicationID string
	// Canary: rotate every Settings.CanaryEvery whatever the expiry (a draft application).
	Canary bool
	// Window is when scheduled rotations (the renewal, the canary) may start; the zero value is
	// always open.
	Window window.Schedule
}

// Settings are the timings the decisions use. They come from config, which owns the defaults;
// every field is required.
type Settings struct {
	RenewBefore   time.Duration // rotate this long before the current secret expires
	AwaitDeadline time.Duration // ask again when no new secret arrived this long after a rotate call
	// RetryMin and RetryMax bound the backoff between rotate attempts (the rotate API allows one
	// call a minute).
	RetryMin, RetryMax time.Duration
	// ProbeEvery is how often AWSCURRENT is proven with one LWA token call.
	ProbeEvery time.Duration
	// CanaryEvery is how often a canary application rotates.
	CanaryEvery time.Duration
	// RotateInterval is the least time between two rotate calls for one application: Amazon
	// allows one a minute. Zero means that minute.
	RotateInterval time.Duration
	// ClaimLease is how long a replica's claim on a due rotation lasts before another replica may
	// take the rotation over; the holder makes its call only in the first fifth of it, so that
	// the rest absorbs clock differences between replicas and Secrets Manager's eventual
	// consistency. Zero means DefaultClaimLease.
	ClaimLease time.Duration
}

// DefaultClaimLease: a dead holder delays its rotation by five minutes; a live one has a minute
// to save its intent and make the call.
const DefaultClaimLease = 5 * time.Minute

func (s Settings) rotateInterval() time.Duration {
	if s.RotateInterval > 0 {
		return s.RotateInterval
	}
	return time.Minute
}

func (s Settings) claimLease() time.Duration {
	if s.ClaimLease > 0 {
		return s.ClaimLease
	}
	return DefaultClaimLease
}

// claimCallBy is how long after claiming the holder may still make its call.
func (s Settings) claimCallBy() time.Duration { return s.claimLease() / 5 }

// ErrSettings marks Settings the rotator cannot run with.
var ErrSettings = errors.New("invalid rotator settings")

func (s Settings) validate() error {
	switch {
	case s.RenewBefore <= 0, s.AwaitDeadline <= 0:
		return fmt.Errorf("%w: renewBefore and awaitDeadline must be positive", ErrSettings)
	case s.RetryMin <= 0 || s.RetryMax < s.RetryMin:
		return fmt.Errorf("%w: retry bounds must satisfy 0 < min <= max", ErrSettings)
	case s.ProbeEvery <= 0, s.CanaryEvery <= 0:
		return fmt.Errorf("%w: probeEvery and canaryEvery must be positive", ErrSettings)
	case s.RotateInterval < 0:
		return fmt.Errorf("%w: rotateInterval must not be negative", ErrSettings)
	case s.ClaimLease < 0:
		return fmt.Errorf("%w: claimLease must not be negative", ErrSettings)
	}
	return nil
}

// Status is what the rotator knows about one application, read at scrape time.
type Status struct {
	App   string
	Phase Phase
	// Reason is why the phase is what it is (the decision's).
	Reason         Reason
	CurrentExpiry  time.Time
	PreviousExpiry time.Time
	// NextRotation is when the daemon will next act on the rotation (Decision.NextActionAt):
	// the rotate call, or the next try at a staged secret; zero when nothing is planned.
	NextRotation  time.Time
	LastSuccess   time.Time
	InFlightSince time.Time
	// RequestedAt is the time of an operator's rotation request not yet served (lwa-rotator rotate).
	RequestedAt time.Time
	// LastError is the last vault read error, while ConsecutiveFailures counts them.
	LastError           string
	Known               bool // the vault was read at least once
	ConsecutiveFailures int
	// CurrentValid is what LWA last said of AWSCURRENT (a probe, or a rotation's token call).
	CurrentValid Validity
	LastProbe    time.Time
	// ExternalChanges counts the times AWSCURRENT moved to a version this process did not
	// promote (the Developer Console and a new value stored by hand look like this).
	ExternalChanges int
	// Canary and CurrentMintedAt: a canary's last rotation is when its current secret was minted
	// (its expiry minus Amazon's lifetime), which survives restarts.
	Canary          bool
	CurrentMintedAt time.Time
	CanaryInterval  time.Duration
	// WindowOverrides counts the scheduled rotations this process started outside the rotation
	// window, because waiting for it would have left less than its safety margin before expiry.
	WindowOverrides int
	// WindowOpensAt is when the window a scheduled rotation waits for opens (zero when none waits).
	WindowOpensAt time.Time
	// PendingSince is when this process first found a new secret staged as AWSPENDING and not
	// yet promoted (verification or promotion waiting out an LWA or Secrets Manager outage).
	PendingSince time.Time
	// ClaimHeldUntil is when the claim this process holds on the application's due rotation
	// lapses (zero when it holds none): while it holds one, no other replica makes the rotate call.
	ClaimHeldUntil time.Time
}

// Validity is LWA's last word on a secret.
type Validity int

// The validities.
const (
	ValidityUnknown Validity = iota // not proven since start-up
	Valid                           // LWA minted a token with it
	Invalid                         // LWA answered invalid_client
)

type nopObserver struct{}

func (nopObserver) Rotation(string, Result) {}

func (nopObserver) RequestWatchRead(time.Time, error) {}
