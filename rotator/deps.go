package rotator

import (
	"context"
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Vault is the part of vault.Store the rotator drives.
type Vault interface {
	Current(ctx context.Context, secretID string) (vault.Version, error)
	Pending(ctx context.Context, secretID string) (vault.Version, bool, error)
	Stage(ctx context.Context, secretID, token string, r vault.Record) error
	Promote(ctx context.Context, secretID, versionID, fromVersionID string) error
	ClearPending(ctx context.Context, secretID, versionID string) error
	LoadState(ctx context.Context, secretID string) (vault.RotationState, error)
	SaveState(ctx context.Context, secretID string, st vault.RotationState) error
	// ClearRequest removes an operator's rotation request once a rotate call for it was accepted.
	ClearRequest(ctx context.Context, secretID string) error
}

// TokenMinter proves a secret works by minting an LWA token with it (no cache in between).
type TokenMinter interface {
	Token(ctx context.Context, clientID string, clientSecret secret.Value) (spapi.Token, error)
}

// SecretRotator asks Amazon for a new client secret.
type SecretRotator interface {
	RotateClientSecret(ctx context.Context, clientID string, region spapi.Region, accessToken secret.Value) (string, error)
}

// Observer is told about every outcome worth a counter.
type Observer interface {
	// Rotation counts finished rotation attempts: result is one of the Result* constants.
	Rotation(app, result string)
	// Notification counts handled notifications: typ is the notification type or "unknown",
	// outcome one of the Outcome* constants.
	Notification(app, typ, outcome string)
}

// Results of a rotation attempt, as counted by Observer.Rotation.
const (
	ResultSuccess        = "success"         // a verified new secret was promoted
	ResultRequested      = "requested"       // the rotate call was accepted
	ResultRequestFailed  = "request_failed"  // the LWA token or rotate call failed
	ResultTimeout        = "timeout"         // no new secret arrived within the await deadline
	ResultRejected       = "rejected"        // LWA refused the new secret
	ResultNotEnrolled    = "not_enrolled"    // Amazon says no new-secret queue is registered
	ResultCurrentInvalid = "current_invalid" // LWA refused the stored current secret
)

// Outcomes of a notification, as counted by Observer.Notification.
const (
	OutcomeProcessed     = "processed"
	OutcomeDuplicate     = "duplicate"
	OutcomeStale         = "stale"
	OutcomeRejected      = "rejected"
	OutcomeUnknownClient = "unknown_client"
	OutcomeMalformed     = "malformed"
	OutcomeFailed        = "failed" // a transient failure; the message comes back
)

// The steps of a rotation where a process can die, in order. Options.Checkpoint is called at each.
const (
	StepIntentSaved    = "intent-saved"    // the rotation intent is in the vault; the rotate call is next
	StepRotateCalled   = "rotate-called"   // Amazon accepted the rotate call
	StepSecretReceived = "secret-received" // a new-secret message was parsed; nothing staged yet
	StepStaged         = "staged"          // the new secret is AWSPENDING
	StepVerified       = "verified"        // LWA accepted the new secret; AWSCURRENT not moved yet
	StepPromoted       = "promoted"        // AWSCURRENT moved; rotation state not yet cleared
	StepDone           = "done"            // state cleared; the message is about to be deleted
)

// Steps lists the Step* constants in order.
var Steps = []string{StepIntentSaved, StepRotateCalled, StepSecretReceived, StepStaged, StepVerified, StepPromoted, StepDone}

// App is one configured application.
type App struct {
	Name          string
	ClientID      string
	Region        spapi.Region
	SecretID      string
	ApplicationID string
}

// Status is what the rotator knows about one application, read at scrape time.
type Status struct {
	App            string
	CurrentExpiry  time.Time
	PreviousExpiry time.Time
	NextRotation   time.Time
	LastSuccess    time.Time
	InFlightSince  time.Time
	// RequestedAt is the time of an operator's rotation request not yet served (lwa-rotator rotate).
	RequestedAt time.Time
	// LastError is the last vault read error, while ConsecutiveFailures counts them.
	LastError           string
	Known               bool // the vault was read at least once
	ConsecutiveFailures int
}

type nopObserver struct{}

func (nopObserver) Rotation(string, string)             {}
func (nopObserver) Notification(string, string, string) {}
