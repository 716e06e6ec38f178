// Package status reads where each application's rotation stands from Secrets Manager alone (no
// daemon needed) and judges whether it needs an operator's attention. Reading is one
// DescribeSecret (tags and staging labels) and one GetSecretValue (the current secret's expiry
// times) per application; judging is a pure function of what was read, the settings and the clock.
package status

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/vault"
)

// SecretsManager is the two read calls status makes; *secretsmanager.Client satisfies it.
type SecretsManager interface {
	DescribeSecret(ctx context.Context, params *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, params *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// App names one configured application.
type App struct {
	Name, SecretID string
}

// State is what the vault says about one application. It holds no secret value.
type State struct {
	App       App
	ReadErr   error // the secret could not be read or decoded; the fields below may be partial
	NoCurrent bool  // the secret exists but no version carries AWSCURRENT
	// CurrentVersionID and the expiry times come from the AWSCURRENT version's stored value.
	CurrentVersionID string
	CurrentExpiry    time.Time // zero: unknown (seeded without clientSecretExpiryTime)
	PreviousExpiry   time.Time
	// CurrentStoredAt is when the current version was written: the last rotation, or the seed.
	CurrentStoredAt  time.Time
	PendingVersionID string // a version labelled AWSPENDING but not AWSCURRENT
	Rotation         vault.RotationState
}

// Read reads one application's state: DescribeSecret, then GetSecretValue of AWSCURRENT.
func Read(ctx context.Context, sm SecretsManager, format vault.Format, app App) State {
	s := State{App: app}
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(app.SecretID)})
	if err != nil {
		s.ReadErr = fmt.Errorf("describing secret %s: %w", app.SecretID, err)
		return s
	}
	if s.Rotation, err = vault.StateFromTags(d.Tags); err != nil {
		s.ReadErr = fmt.Errorf("reading the rotation state of secret %s: %w", app.SecretID, err)
		return s
	}
	s.PendingVersionID = vault.PendingVersion(d.VersionIdsToStages)
	if vault.CurrentVersion(d.VersionIdsToStages) == "" {
		s.NoCurrent = true
		return s
	}
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(app.SecretID), VersionStage: aws.String(vault.StageCurrent)})
	if err != nil {
		s.ReadErr = fmt.Errorf("reading %s of secret %s: %w", vault.StageCurrent, app.SecretID, err)
		return s
	}
	s.CurrentVersionID = aws.ToString(out.VersionId)
	s.CurrentStoredAt = aws.ToTime(out.CreatedDate).UTC()
	if out.CreatedDate == nil {
		s.CurrentStoredAt = time.Time{}
	}
	if out.SecretString == nil {
		s.ReadErr = fmt.Errorf("reading version %s of secret %s: %w: not a string secret", s.CurrentVersionID, app.SecretID, vault.ErrMalformed)
		return s
	}
	rec, err := vault.Decode([]byte(*out.SecretString), format)
	if err != nil {
		s.ReadErr = fmt.Errorf("reading version %s of secret %s: %w", s.CurrentVersionID, app.SecretID, err)
		return s
	}
	s.CurrentExpiry, s.PreviousExpiry = rec.ExpiresAt, rec.PreviousExpiresAt
	return s
}

// ReadAll reads every application in order.
func ReadAll(ctx context.Context, sm SecretsManager, format vault.Format, apps []App) []State {
	out := make([]State, 0, len(apps))
	for _, a := range apps {
		out = append(out, Read(ctx, sm, format, a))
	}
	return out
}
