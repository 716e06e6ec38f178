package vault

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"go.uber.org/zap"
)

// ErrAtRest marks a start-up refusal because data would not be encrypted as configured.
var ErrAtRest = errors.New("encryption at rest check failed")

// KeyDescriber is the one KMS call the at-rest check makes; *kms.Client satisfies it.
type KeyDescriber interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

// SecretDescriber is what the check reads of the secrets; *Store satisfies it, listing them when
// it can (DescribeAll).
type SecretDescriber interface {
	DescribeAll(ctx context.Context, secretIDs []string) ([]Info, []error)
}

// SecretRef names one application's secret for the check.
type SecretRef struct {
	App, SecretID string
}

// AtRest checks secrets for encryption with the configured key and room for the daemon's tags:
// start-up checks every application, a reload the ones it adds or points at another secret, with
// the same rules.
type AtRest struct {
	store SecretDescriber
	keys  KeyDescriber
	// configured is the key as configured (for messages); wantKey its ARN, resolved once:
	// kmsKeyId changes only on restart.
	configured, wantKey string
	log                 *zap.Logger

	mu sync.Mutex
	// arns caches key id (as configured or as a secret reports it) → ARN, so each distinct key
	// is described once however many applications share it. A key's ARN and manager never
	// change, so entries never go stale. Failures are not cached.
	arns map[string]string
}

// NewAtRest resolves the configured key kmsKeyID (id, ARN or alias), which must be
// customer-managed. log nil logs nothing.
func NewAtRest(ctx context.Context, kmsKeyID string, store SecretDescriber, keys KeyDescriber, log *zap.Logger) (*AtRest, error) {
	if log == nil {
		log = zap.NewNop()
	}
	c := &AtRest{store: store, keys: keys, configured: kmsKeyID, log: log, arns: map[string]string{}}
	want, err := c.keyARN(ctx, kmsKeyID)
	if err != nil {
		return nil, fmt.Errorf("describing the configured KMS key %s: %w", kmsKeyID, err)
	}
	c.wantKey = want
	return c, nil
}

// Check returns the encryption violations of the secrets (the caller's atRest setting decides
// whether they refuse) and the problems that always refuse: a secret with no room for the
// daemon's tags cannot hold a rotation's crash-safe state. An unreachable secret is logged and
// passes (readiness reports it).
func (c *AtRest) Check(ctx context.Context, secrets []SecretRef) (violations, refusals []string, err error) {
	infos, errs := c.describeAll(ctx, secrets)
	for i, ref := range secrets {
		info, err := infos[i], errs[i]
		if err != nil {
			c.log.Error("secret unreachable", zap.String("app", ref.App), zap.String("secret_id", ref.SecretID), zap.Error(err))
			continue
		}
		if room := MaxTags - info.OtherTags; room < len(StateTags) {
			refusals = append(refusals, fmt.Sprintf("secret %s has %d tags of its own; the daemon needs room for %d more (Secrets Manager allows %d): remove %d tags",
				ref.SecretID, info.OtherTags, len(StateTags), MaxTags, len(StateTags)-room))
		}
		if info.KMSKeyID == "" {
			violations = append(violations, fmt.Sprintf("secret %s uses the AWS-managed key, not the configured customer-managed key", ref.SecretID))
			continue
		}
		got, err := c.keyARN(ctx, info.KMSKeyID)
		if err != nil {
			return nil, nil, fmt.Errorf("describing the KMS key of secret %s: %w", ref.SecretID, err)
		}
		if got != c.wantKey {
			violations = append(violations, fmt.Sprintf("secret %s is encrypted with %s, not the configured key %s", ref.SecretID, info.KMSKeyID, c.configured))
		}
	}
	return violations, refusals, nil
}

// describeAll describes every secret, keeping their order. The store lists them when it can (ten
// calls for a thousand secrets); a listing may lag changes by minutes, so a secret re-encrypted
// with another key just before start-up may be judged by its old key, which the next restart
// corrects.
func (c *AtRest) describeAll(ctx context.Context, secrets []SecretRef) ([]Info, []error) {
	ids := make([]string, len(secrets))
	for i, ref := range secrets {
		ids[i] = ref.SecretID
	}
	return c.store.DescribeAll(ctx, ids)
}

// keyARN resolves a key id, ARN or alias to the key's ARN and insists it is customer-managed.
// The lock guards only the cache, never the KMS call.
func (c *AtRest) keyARN(ctx context.Context, id string) (string, error) {
	c.mu.Lock()
	arn, ok := c.arns[id]
	c.mu.Unlock()
	if ok {
		return arn, nil
	}
	out, err := c.keys.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
	if err != nil {
		return "", err
	}
	md := out.KeyMetadata
	if md == nil {
		return "", errors.New("KMS returned no key metadata")
	}
	if md.KeyManager != kmstypes.KeyManagerTypeCustomer {
		return "", fmt.Errorf("%w: key %s is %s-managed, not customer-managed", ErrAtRest, id, md.KeyManager)
	}
	arn = aws.ToString(md.Arn)
	c.mu.Lock()
	c.arns[id] = arn
	c.mu.Unlock()
	return arn, nil
}
