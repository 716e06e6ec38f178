// Package seed stores an application's existing LWA client secret as the first AWSCURRENT
// version of its Secrets Manager secret, in the vault's stored shape, after proving it mints an
// LWA token. It never replaces a stored secret that still works unless forced. Where the secret
// exists it is read with the daemon's read (vault.Store.Read) and its rotation judged with the
// daemon's decision (rotator.Decide), and once seeded it is read back so the operator sees what
// the daemon will do with it.
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

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// SecretsManager is the calls seeding makes besides the daemon's read; *secretsmanager.Client
// satisfies it.
type SecretsManager interface {
	DescribeSecret(ctx context.Context, params *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	CreateSecret(ctx context.Context, params *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
	PutSecretValue(ctx context.Context, params *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// Reader is the daemon's read of one secret; *vault.Store satisfies it.
type Reader interface {
	Read(ctx context.Context, secretID string) (vault.Snapshot, error)
}

// Deps are what seeding reads and writes through, and its clock.
type Deps struct {
	SM    SecretsManager
	Vault Reader
	LWA   TokenMinter
	Clock clock.Clock
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
	// App is the application as the daemon sees it (daemon.RotatorApps): its SecretID is the
	// name (or ARN, if it exists) of the secret, its ClientID the client the value is for.
	App rotator.App
	// Settings are the daemon's (daemon.RotatorSettings), for the decision seed reports.
	Settings rotator.Settings
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
	// Decision is what the daemon decides on the secret as seed left it: read back once after a
	// write, or the read seed judged on when nothing changed. When that read fails, DecisionErr
	// says why (the secret itself was stored).
	Decision    rotator.Decision
	DecisionErr error
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

// Seed stores value as AWSCURRENT of the application's secret once it has proved it mints an
// LWA token.
func Seed(ctx context.Context, d Deps, o Options, value secret.Value) (Result, error) {
	id, clientID := o.App.SecretID, o.App.ClientID
	if err := CheckShape(value); err != nil {
		return Result{}, err
	}
	if _, err := d.LWA.Token(ctx, clientID, value); err != nil {
		if rejected(err) {
			return Result{}, fmt.Errorf("proving the secret: %w for client id %s: %w", ErrRejected, clientID, err)
		}
		return Result{}, fmt.Errorf("proving the secret: minting an LWA token for client id %s: %w", clientID, err)
	}
	rec := vault.Record{ClientID: clientID, ClientSecret: value, ExpiresAt: o.ExpiresAt}
	body, err := vault.Encode(rec, o.Format)
	if err != nil {
		return Result{}, err
	}

	desc, err := d.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		res, err := create(ctx, d.SM, o, body)
		if err != nil {
			return Result{}, err
		}
		return readBack(ctx, d, o, res), nil
	case err != nil:
		return Result{}, fmt.Errorf("describing secret %s: %w", id, err)
	}
	res := Result{Outcome: Stored, ARN: aws.ToString(desc.ARN)}
	if cur := vault.CurrentVersion(desc.VersionIdsToStages); cur != "" {
		snap, err := d.Vault.Read(ctx, id)
		switch {
		case errors.Is(err, vault.ErrMalformed) && vault.PendingVersion(desc.VersionIdsToStages) != "" && !o.Force:
			// The daemon's read fails, perhaps on the staged version alone: with no decision to
			// go by, neither the working secret nor the staged one is put at risk.
			return Result{}, fmt.Errorf("%w: version %s is staged as AWSPENDING on secret %s, which cannot be read as the daemon reads it: %w (--force to seed anyway)",
				ErrWouldOverwrite, vault.PendingVersion(desc.VersionIdsToStages), id, err)
		case errors.Is(err, vault.ErrMalformed):
			// AWSCURRENT is not a record the daemon can read: it can do nothing with this secret,
			// so there is no rotation to race and no working secret to keep.
			res.Replaced = cur
		case err != nil:
			return Result{}, err
		default:
			dec := rotator.Decide(rotator.Input{App: o.App, Snapshot: snap}, o.Settings, d.Clock.Now())
			if !o.Force {
				if err := racing(id, snap, dec); err != nil {
					return Result{}, err
				}
			}
			same, err := judgeCurrent(ctx, d.LWA, o, snap.Current, rec)
			if err != nil {
				return Result{}, err
			}
			if same {
				return Result{Outcome: Unchanged, VersionID: snap.Current.ID, ARN: res.ARN, Decision: dec}, nil
			}
			res.Replaced = snap.Current.ID
		}
	}
	out, err := d.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(id), SecretString: aws.String(string(body)), VersionStages: []string{vault.StageCurrent}})
	if err != nil {
		return Result{}, fmt.Errorf("putting AWSCURRENT on secret %s: %w", id, err)
	}
	res.VersionID = aws.ToString(out.VersionId)
	return readBack(ctx, d, o, res), nil
}

// racing says why seeding now would race the daemon's rotation, by the daemon's own decision: a
// rotate call's new secret is on its way (requested, overdue), or a secret is staged (pending).
func racing(secretID string, snap vault.Snapshot, d rotator.Decision) error {
	next := "nothing is planned"
	if !d.NextActionAt.IsZero() {
		next = "the daemon acts next at " + d.NextActionAt.UTC().Format(time.RFC3339Nano)
	}
	switch d.Phase {
	case rotator.PhaseRequested, rotator.PhaseOverdue:
		return fmt.Errorf("%w: a rotation is in flight on secret %s since %s (phase %s, %s); seeding now would race it (--force to seed anyway)",
			ErrWouldOverwrite, secretID, snap.State.RequestedAt.UTC().Format(time.RFC3339), d.Phase, next)
	case rotator.PhasePending:
		return fmt.Errorf("%w: version %s is staged as AWSPENDING on secret %s (phase pending, %s): %s (--force to seed anyway)",
			ErrWouldOverwrite, snap.Pending.ID, secretID, next, d.Reason.Explain())
	}
	return nil
}

// readBack reads the secret once as the daemon will, and says what the daemon decides on it.
func readBack(ctx context.Context, d Deps, o Options, res Result) Result {
	snap, err := d.Vault.Read(ctx, o.App.SecretID)
	if err != nil {
		res.DecisionErr = fmt.Errorf("reading the seeded secret back: %w", err)
		return res
	}
	res.Decision = rotator.Decide(rotator.Input{App: o.App, Snapshot: snap}, o.Settings, d.Clock.Now())
	return res
}

// judgeCurrent reports whether AWSCURRENT already holds rec's client id and secret, and refuses
// (unless forced) to replace a different one that still mints a token.
func judgeCurrent(ctx context.Context, lwa TokenMinter, o Options, cur vault.Version, rec vault.Record) (bool, error) {
	stored := cur.Record
	if stored.ClientID == rec.ClientID && stored.ClientSecret.Equal(rec.ClientSecret) {
		return true, nil
	}
	if o.Force {
		return false, nil
	}
	_, err := lwa.Token(ctx, stored.ClientID, stored.ClientSecret)
	switch {
	case err == nil:
		return false, fmt.Errorf("%w: AWSCURRENT (version %s) of secret %s holds a different secret that still mints an LWA token (--force to replace it; it stays as AWSPREVIOUS)",
			ErrWouldOverwrite, cur.ID, o.App.SecretID)
	case rejected(err):
		return false, nil // LWA refuses it: replacing it loses nothing
	}
	return false, fmt.Errorf("%w: cannot tell whether AWSCURRENT (version %s) of secret %s still works: %w (--force to replace it)",
		ErrWouldOverwrite, cur.ID, o.App.SecretID, err)
}

func create(ctx context.Context, sm SecretsManager, o Options, body []byte) (Result, error) {
	id := o.App.SecretID
	if strings.HasPrefix(id, "arn:") {
		return Result{}, fmt.Errorf("secret %s does not exist, and a secret is created by name: configure secretId as its name", id)
	}
	if o.KMSKeyID == "" {
		return Result{}, fmt.Errorf("creating secret %s: kmsKeyId is not configured", id)
	}
	out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(id), KmsKeyId: aws.String(o.KMSKeyID), SecretString: aws.String(string(body)),
		Description: aws.String("LWA client secret kept fresh by lwa-rotator")})
	if err != nil {
		return Result{}, fmt.Errorf("creating secret %s with key %s: %w", id, o.KMSKeyID, err)
	}
	return Result{Outcome: Created, VersionID: aws.ToString(out.VersionId), ARN: aws.ToString(out.ARN)}, nil
}

func rejected(err error) bool {
	return errors.Is(err, spapi.ErrInvalidClient) || errors.Is(err, spapi.ErrUnauthorized)
}
