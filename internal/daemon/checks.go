package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/vault"
)

type keyDescriber interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

type secretDescriber interface {
	Describe(ctx context.Context, secretID string) (vault.Info, error)
}

// ErrAtRest marks a start-up refusal because data would not be encrypted as configured.
var ErrAtRest = errors.New("encryption at rest check failed")

// secretChecks holds what checking a secret needs: start-up checks every application, a reload
// the ones it adds or points at another secret, with the same rules.
type secretChecks struct {
	store secretDescriber
	keys  keyDescriber
	// wantKey is the configured key's ARN, resolved once: kmsKeyId changes only on restart.
	wantKey string
	log     *zap.Logger
}

func newSecretChecks(ctx context.Context, cfg *config.Config, store secretDescriber, keys keyDescriber, log *zap.Logger) (*secretChecks, error) {
	want, err := keyARN(ctx, keys, cfg.KMSKeyID)
	if err != nil {
		return nil, fmt.Errorf("describing the configured KMS key %s: %w", cfg.KMSKeyID, err)
	}
	return &secretChecks{store: store, keys: keys, wantKey: want, log: log}, nil
}

// check returns the encryption violations of apps' secrets (governed by atRest) and the problems
// that always refuse: a secret with no room for the daemon's tags cannot hold a rotation's
// crash-safe state. An unreachable secret is logged and passes (readiness reports it).
func (sc *secretChecks) check(ctx context.Context, cfg *config.Config, apps []config.Application) (violations, refusals []string, err error) {
	for _, app := range apps {
		info, err := sc.store.Describe(ctx, app.SecretID)
		if err != nil {
			sc.log.Error("secret unreachable", zap.String("app", app.Name), zap.String("secret_id", app.SecretID), zap.Error(err))
			continue
		}
		if room := vault.MaxTags - info.OtherTags; room < len(vault.StateTags) {
			refusals = append(refusals, fmt.Sprintf("secret %s has %d tags of its own; the daemon needs room for %d more (Secrets Manager allows %d): remove %d tags",
				app.SecretID, info.OtherTags, len(vault.StateTags), vault.MaxTags, len(vault.StateTags)-room))
		}
		if info.KMSKeyID == "" {
			violations = append(violations, fmt.Sprintf("secret %s uses the AWS-managed key, not the configured customer-managed key", app.SecretID))
			continue
		}
		got, err := keyARN(ctx, sc.keys, info.KMSKeyID)
		if err != nil {
			return nil, nil, fmt.Errorf("describing the KMS key of secret %s: %w", app.SecretID, err)
		}
		if got != sc.wantKey {
			violations = append(violations, fmt.Sprintf("secret %s is encrypted with %s, not the configured key %s", app.SecretID, info.KMSKeyID, cfg.KMSKeyID))
		}
	}
	return violations, refusals, nil
}

// keyARN resolves a key id, ARN or alias to the key's ARN and insists it is customer-managed.
func keyARN(ctx context.Context, keys keyDescriber, id string) (string, error) {
	out, err := keys.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
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
	return aws.ToString(md.Arn), nil
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}
