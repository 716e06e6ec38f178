package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// The staging labels Secrets Manager's rotation protocol is built on.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
	StagePending  = "AWSPENDING"
)

// Errors callers branch on. Every error the Store returns wraps the SDK error too, so
// errors.As still finds the *types.…Exception behind it.
var (
	// ErrNotFound: the secret, or the version or label asked for, does not exist.
	ErrNotFound = errors.New("vault: not found")
	// ErrTokenConflict: the ClientRequestToken already names a version holding different bytes.
	ErrTokenConflict = errors.New("vault: client request token already used for a different value")
	// ErrNoCurrent: the secret exists but no version carries AWSCURRENT.
	ErrNoCurrent = errors.New("vault: secret has no AWSCURRENT version")
)

// SecretsManager holds the Secrets Manager calls the Store makes; *secretsmanager.Client
// satisfies it.
type SecretsManager interface {
	GetSecretValue(ctx context.Context, params *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, params *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, params *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	DescribeSecret(ctx context.Context, params *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	TagResource(ctx context.Context, params *secretsmanager.TagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
	UntagResource(ctx context.Context, params *secretsmanager.UntagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UntagResourceOutput, error)
	CreateSecret(ctx context.Context, params *secretsmanager.CreateSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error)
}

// Store reads and writes LWA client secrets. Format "" means FormatDefault; Log nil logs nothing.
type Store struct {
	SM     SecretsManager
	Format Format
	Log    *zap.Logger
	// Clock, nil for the real one, times the Store's own writes, so that it never answers from a
	// listing that may not show them yet (ReadListed).
	Clock clock.Clock

	cache  versionCache[Record]
	claims versionCache[Claim]
	list   listing
	writes writeLog
}

// Version is one version of a secret with its staging labels.
type Version struct {
	ID     string
	Record Record
	Stages []string
}

// Info is what start-up checks need to know about a secret.
type Info struct {
	ARN, Name, KMSKeyID string
	// OtherTags counts the secret's tags that are not the daemon's (lwa-rotator:*).
	OtherTags int
}

func (s *Store) log() *zap.Logger {
	if s.Log == nil {
		return zap.NewNop()
	}
	return s.Log
}

func (s *Store) now() time.Time {
	if s.Clock == nil {
		return clock.Real{}.Now()
	}
	return s.Clock.Now()
}

func (s *Store) format() Format {
	if s.Format == "" {
		return FormatDefault
	}
	return s.Format
}

// Current returns the AWSCURRENT version: ErrNoCurrent if the secret has none, ErrNotFound if
// the secret does not exist.
func (s *Store) Current(ctx context.Context, secretID string) (Version, error) {
	v, err := s.byStage(ctx, secretID, StageCurrent)
	if errors.Is(err, ErrNotFound) {
		// A secret created without a value has no AWSCURRENT; tell that apart from a missing one.
		if _, derr := s.describe(ctx, secretID); derr == nil {
			return Version{}, fmt.Errorf("reading %s of secret %s: %w", StageCurrent, secretID, ErrNoCurrent)
		}
	}
	return v, err
}

// Previous returns the AWSPREVIOUS version, ErrNotFound if there is none.
func (s *Store) Previous(ctx context.Context, secretID string) (Version, error) {
	return s.byStage(ctx, secretID, StagePrevious)
}

// Pending returns the version labelled AWSPENDING that is not also AWSCURRENT: an unfinished
// rotation. A pending label left on the current version is a finished rotation's leftover and
// does not count.
func (s *Store) Pending(ctx context.Context, secretID string) (Version, bool, error) {
	d, err := s.describe(ctx, secretID)
	if err != nil {
		return Version{}, false, fmt.Errorf("looking for %s of secret %s: %w", StagePending, secretID, err)
	}
	id := PendingVersion(d.VersionIdsToStages)
	if id == "" {
		return Version{}, false, nil
	}
	v, err := s.byID(ctx, secretID, id)
	if err != nil {
		return Version{}, false, err
	}
	return v, true, nil
}

// Describe returns the secret's ARN, name and KMS key (empty when it uses the AWS managed key).
func (s *Store) Describe(ctx context.Context, secretID string) (Info, error) {
	d, err := s.describe(ctx, secretID)
	if err != nil {
		return Info{}, fmt.Errorf("describing secret %s: %w", secretID, err)
	}
	other := 0
	for _, t := range d.Tags {
		if !isStateTag(aws.ToString(t.Key)) {
			other++
		}
	}
	return Info{ARN: aws.ToString(d.ARN), Name: aws.ToString(d.Name), KMSKeyID: aws.ToString(d.KmsKeyId), OtherTags: other}, nil
}

// Create makes a secret encrypted with kmsKeyID holding r as its first AWSCURRENT version and
// returns its ARN. The sandbox and tests use it; the daemon never creates secrets.
func (s *Store) Create(ctx context.Context, name, kmsKeyID string, r Record) (string, error) {
	b, err := Encode(r, s.format())
	if err != nil {
		return "", fmt.Errorf("creating secret %s: %w", name, err)
	}
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(b))}
	if kmsKeyID != "" {
		in.KmsKeyId = aws.String(kmsKeyID)
	}
	out, err := s.SM.CreateSecret(ctx, in)
	if err != nil {
		return "", fmt.Errorf("creating secret %s: %w", name, mapErr(err))
	}
	s.log().Debug("created secret", zap.String("secret", name), zap.String("arn", aws.ToString(out.ARN)),
		zap.String("version", aws.ToString(out.VersionId)))
	return aws.ToString(out.ARN), nil
}

func (s *Store) byStage(ctx context.Context, secretID, stage string) (Version, error) {
	out, err := s.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(secretID), VersionStage: aws.String(stage)})
	if err != nil {
		return Version{}, fmt.Errorf("reading %s of secret %s: %w", stage, secretID, mapErr(err))
	}
	return s.toVersion(secretID, out)
}

func (s *Store) byID(ctx context.Context, secretID, versionID string) (Version, error) {
	out, err := s.getByID(ctx, secretID, versionID)
	if err != nil {
		return Version{}, err
	}
	return s.toVersion(secretID, out)
}

func (s *Store) getByID(ctx context.Context, secretID, versionID string) (*secretsmanager.GetSecretValueOutput, error) {
	out, err := s.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(secretID), VersionId: aws.String(versionID)})
	if err != nil {
		return nil, fmt.Errorf("reading version %s of secret %s: %w", versionID, secretID, mapErr(err))
	}
	return out, nil
}

func (s *Store) toVersion(secretID string, out *secretsmanager.GetSecretValueOutput) (Version, error) {
	id := aws.ToString(out.VersionId)
	if out.SecretString == nil {
		return Version{}, fmt.Errorf("reading version %s of secret %s: %w: not a string secret", id, secretID, ErrMalformed)
	}
	r, err := Decode([]byte(*out.SecretString), s.format())
	if err != nil {
		return Version{}, fmt.Errorf("reading version %s of secret %s: %w", id, secretID, err)
	}
	s.log().Debug("read secret version", zap.String("secret", secretID), zap.String("version", id),
		zap.Strings("stages", out.VersionStages))
	return Version{ID: id, Record: r, Stages: out.VersionStages}, nil
}

func (s *Store) describe(ctx context.Context, secretID string) (*secretsmanager.DescribeSecretOutput, error) {
	out, err := s.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}

// mapErr adds the sentinel a caller branches on, keeping the SDK error in the chain.
func mapErr(err error) error {
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// PendingVersion returns the version carrying AWSPENDING but not AWSCURRENT (DescribeSecret's
// VersionIdsToStages), or "": the same rule as Pending, for callers that describe the secret
// themselves.
func PendingVersion(versions map[string][]string) string {
	id := holder(versions, StagePending)
	if id == "" || slices.Contains(versions[id], StageCurrent) {
		return ""
	}
	return id
}

// CurrentVersion returns the version carrying AWSCURRENT, or "".
func CurrentVersion(versions map[string][]string) string { return holder(versions, StageCurrent) }

// holder returns the version carrying stage, or "".
func holder(versions map[string][]string, stage string) string {
	for id, stages := range versions {
		if slices.Contains(stages, stage) {
			return id
		}
	}
	return ""
}
