// Package seed stores an application's existing LWA client secret as the first AWSCURRENT
// version of its Secrets Manager secret, in the vault's stored shape, after proving it mints an
// LWA token. It never replaces a stored secret that still works unless forced.
package seed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// SecretsManager is the calls seeding makes; *secretsmanager.Client satisfies it.
type SecretsManager interface {
	DescribeSecret(ctx context.Context, params *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, params *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	CreateSecret(ctx context.Context, params *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	PutSecretValue(ctx context.Context, params *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// TokenMinter proves a client id and secret work; *spapi.LWAClient satisfies it.
type TokenMinter interface {
	Token(ctx context.Context, clientID string, clientSecret secret.Value) (spapi.Token, error)
}

// Errors callers branch on.
var (
	// ErrShape: the value is not an LWA client secret; the message says what is wrong, never the value.
	ErrShape = errors.New("not an LWA client secret")
	// ErrRejected: LWA refuses the client id with this secret.
	ErrRejected = errors.New("LWA rejects this client id and secret")
	// ErrWouldOverwrite: a different secret that still works is stored; --force replaces it.
	ErrWouldOverwrite = errors.New("refusing to overwrite a working secret")
)

// Options say what to seed where.
type Options struct {
	SecretID string // name (or ARN, if it exists) of the application's secret
	ClientID string
	KMSKeyID string // the customer-managed key for a secret seed creates
	Format   vault.Format
	// ExpiresAt, when known, is stored as clientSecretExpiryTime; zero leaves it unknown until
	// Amazon's expiry notice.
	ExpiresAt time.Time
	// Force replaces a different stored secret even if it still works, and seeds during a rotation.
	Force bool
}

// Outcome says what Seed did.
type Outcome string

const (
	Created   Outcome = "created"   // the secret did not exist; created with the value as AWSCURRENT
	Stored    Outcome = "stored"    // a new AWSCURRENT version was put on the existing secret
	Unchanged Outcome = "unchanged" // AWSCURRENT already holds this client id and secret
)

// Result is what Seed did, with no secret value.
type Result struct {
	Outcome   Outcome
	VersionID string
	ARN       string
	// Replaced describes the AWSCURRENT version that was replaced, if any (it becomes AWSPREVIOUS).
	Replaced string
}

const secretPrefix = "amzn1.oa2-cs.v1."

// CheckShape says what is wrong with a pasted value without repeating any of it.
func CheckShape(v secret.Value) error {
	s := v.Reveal()
	switch {
	case s == "":
		return fmt.Errorf("%w: the input is empty", ErrShape)
	case strings.HasPrefix(s, "amzn1.application-oa2-client."):
		return fmt.Errorf("%w: this is a client id (amzn1.application-oa2-client.…), not the client secret", ErrShape)
	case strings.HasPrefix(s, "{"):
		return fmt.Errorf("%w: the input looks like JSON; paste only the client secret", ErrShape)
	case !strings.HasPrefix(s, secretPrefix):
		return fmt.Errorf("%w: it does not start with %s (%d characters read)", ErrShape, secretPrefix, len(s))
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("%w: it contains whitespace or control characters inside", ErrShape)
	case len(s) < len(secretPrefix)+16:
		return fmt.Errorf("%w: it is too short (%d characters after the prefix)", ErrShape, len(s)-len(secretPrefix))
	case len(s) > 1024:
		return fmt.Errorf("%w: it is too long (%d characters)", ErrShape, len(s))
	}
	return nil
}

// Seed stores value as AWSCURRENT of o.SecretID once it has proved it mints an LWA token.
func Seed(ctx context.Context, sm SecretsManager, lwa TokenMinter, o Options, value secret.Value) (Result, error) {
	if err := CheckShape(value); err != nil {
		return Result{}, err
	}
	if _, err := lwa.Token(ctx, o.ClientID, value); err != nil {
		if rejected(err) {
			return Result{}, fmt.Errorf("proving the secret: %w for client id %s: %w", ErrRejected, o.ClientID, err)
		}
		return Result{}, fmt.Errorf("proving the secret: minting an LWA token for client id %s: %w", o.ClientID, err)
	}
	rec := vault.Record{ClientID: o.ClientID, ClientSecret: value, ExpiresAt: o.ExpiresAt}
	body, err := vault.Encode(rec, o.Format)
	if err != nil {
		return Result{}, err
	}

	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(o.SecretID)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return create(ctx, sm, o, body)
	case err != nil:
		return Result{}, fmt.Errorf("describing secret %s: %w", o.SecretID, err)
	}
	st, err := vault.StateFromTags(d.Tags)
	if err != nil {
		return Result{}, fmt.Errorf("reading the rotation state of secret %s: %w", o.SecretID, err)
	}
	if !o.Force {
		if !st.RequestedAt.IsZero() {
			return Result{}, fmt.Errorf("%w: a rotation is in flight on secret %s since %s; seeding now would race it (--force to seed anyway)",
				ErrWouldOverwrite, o.SecretID, st.RequestedAt.Format(time.RFC3339))
		}
		if id := vault.PendingVersion(d.VersionIdsToStages); id != "" {
			return Result{}, fmt.Errorf("%w: a new secret (version %s) is staged as AWSPENDING on secret %s (--force to seed anyway)",
				ErrWouldOverwrite, id, o.SecretID)
		}
	}
	res := Result{Outcome: Stored, ARN: aws.ToString(d.ARN)}
	if cur := vault.CurrentVersion(d.VersionIdsToStages); cur != "" {
		same, err := judgeCurrent(ctx, sm, lwa, o, cur, rec)
		if err != nil {
			return Result{}, err
		}
		if same {
			return Result{Outcome: Unchanged, VersionID: cur, ARN: res.ARN}, nil
		}
		res.Replaced = cur
	}
	out, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(o.SecretID), SecretString: aws.String(string(body)), VersionStages: []string{vault.StageCurrent}})
	if err != nil {
		return Result{}, fmt.Errorf("putting AWSCURRENT on secret %s: %w", o.SecretID, err)
	}
	res.VersionID = aws.ToString(out.VersionId)
	return res, nil
}

// judgeCurrent reports whether AWSCURRENT already holds rec's client id and secret, and refuses
// (unless forced) to replace a different one that still mints a token.
func judgeCurrent(ctx context.Context, sm SecretsManager, lwa TokenMinter, o Options, cur string, rec vault.Record) (bool, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(o.SecretID), VersionStage: aws.String(vault.StageCurrent)})
	if err != nil {
		return false, fmt.Errorf("reading AWSCURRENT of secret %s: %w", o.SecretID, err)
	}
	if out.SecretString == nil {
		return false, nil // a binary secret: nothing the daemon could use
	}
	stored, err := vault.Decode([]byte(*out.SecretString), o.Format)
	if err != nil {
		return false, nil // not a record the daemon can read: not a working secret
	}
	if stored.ClientID == rec.ClientID && stored.ClientSecret.Equal(rec.ClientSecret) {
		return true, nil
	}
	if o.Force {
		return false, nil
	}
	_, err = lwa.Token(ctx, stored.ClientID, stored.ClientSecret)
	switch {
	case err == nil:
		return false, fmt.Errorf("%w: AWSCURRENT (version %s) of secret %s holds a different secret that still mints an LWA token (--force to replace it; it stays as AWSPREVIOUS)",
			ErrWouldOverwrite, cur, o.SecretID)
	case rejected(err):
		return false, nil // LWA refuses it: replacing it loses nothing
	}
	return false, fmt.Errorf("%w: cannot tell whether AWSCURRENT (version %s) of secret %s still works: %w (--force to replace it)",
		ErrWouldOverwrite, cur, o.SecretID, err)
}

func create(ctx context.Context, sm SecretsManager, o Options, body []byte) (Result, error) {
	if strings.HasPrefix(o.SecretID, "arn:") {
		return Result{}, fmt.Errorf("secret %s does not exist, and a secret is created by name: configure secretId as its name", o.SecretID)
	}
	if o.KMSKeyID == "" {
		return Result{}, fmt.Errorf("creating secret %s: kmsKeyId is not configured", o.SecretID)
	}
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(o.SecretID), KmsKeyId: aws.String(o.KMSKeyID), SecretString: aws.String(string(body)),
		Description: aws.String("LWA client secret kept fresh by lwa-rotator")})
	if err != nil {
		return Result{}, fmt.Errorf("creating secret %s with key %s: %w", o.SecretID, o.KMSKeyID, err)
	}
	return Result{Outcome: Created, VersionID: aws.ToString(out.VersionId), ARN: aws.ToString(out.ARN)}, nil
}

func rejected(err error) bool {
	return errors.Is(err, spapi.ErrInvalidClient) || errors.Is(err, spapi.ErrUnauthorized)
}
