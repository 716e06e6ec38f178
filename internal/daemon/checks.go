package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// awsEndpointVars are the SDK's standard endpoint overrides for the services the daemon calls.
var awsEndpointVars = []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_KMS"}

// checkAWSEndpoints holds AWS endpoint overrides to the same transport rule as the file's
// endpoints: a secret must never cross the network in the clear.
func checkAWSEndpoints(cfg *config.Config, getenv func(string) string) error {
	var problems []string
	for _, v := range awsEndpointVars {
		if raw := getenv(v); raw != "" {
			if err := cfg.CheckTransport(v, raw); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	if len(problems) > 0 {
		return &config.ValidationError{Problems: problems}
	}
	return nil
}

type queueAttributes interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

type keyDescriber interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

type secretDescriber interface {
	Describe(ctx context.Context, secretID string) (vault.Info, error)
}

// ErrAtRest marks a start-up refusal because data would not be encrypted as configured.
var ErrAtRest = errors.New("encryption at rest check failed")

// startupChecks proves the queues and secrets are reachable and encrypted as the configuration
// demands, and finds each queue's dead-letter queue (by queue URL). Reachability problems only make
// the daemon unready (they may pass); a positive finding of missing encryption refuses to start
// unless atRest is "warn".
func startupChecks(ctx context.Context, cfg *config.Config, store secretDescriber, keys keyDescriber, q queueAttributes, h *health, log *zap.Logger) (map[string]string, error) {
	var violations []string
	dlqs := map[string]string{}
	for _, url := range uniq(cfg.Queues.Expiry, cfg.Queues.NewSecret) {
		out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		h.Polled(url, 0, err)
		if err != nil {
			log.Error("queue unreachable at start-up", zap.String("queue_url", url), zap.Error(err))
			continue
		}
		a := out.Attributes
		if a["KmsMasterKeyId"] == "" && a["SqsManagedSseEnabled"] != "true" {
			violations = append(violations, fmt.Sprintf("queue %s has no server-side encryption (SSE-KMS or SSE-SQS)", url))
		}
		if dlq, ok := deadLetterURL(url, a); ok {
			dlqs[url] = dlq
		} else {
			log.Warn("queue has no dead-letter queue: messages the daemon refuses come back forever", zap.String("queue_url", url))
		}
	}
	want, err := keyARN(ctx, keys, cfg.KMSKeyID)
	if err != nil {
		return nil, fmt.Errorf("describing the configured KMS key %s: %w", cfg.KMSKeyID, err)
	}
	for _, app := range cfg.Applications {
		info, err := store.Describe(ctx, app.SecretID)
		if err != nil {
			log.Error("secret unreachable at start-up", zap.String("app", app.Name), zap.String("secret_id", app.SecretID), zap.Error(err))
			continue
		}
		if info.KMSKeyID == "" {
			violations = append(violations, fmt.Sprintf("secret %s uses the AWS-managed key, not the configured customer-managed key", app.SecretID))
			continue
		}
		got, err := keyARN(ctx, keys, info.KMSKeyID)
		if err != nil {
			return nil, fmt.Errorf("describing the KMS key of secret %s: %w", app.SecretID, err)
		}
		if got != want {
			violations = append(violations, fmt.Sprintf("secret %s is encrypted with %s, not the configured key %s", app.SecretID, info.KMSKeyID, cfg.KMSKeyID))
		}
	}
	if len(violations) == 0 {
		return dlqs, nil
	}
	if cfg.AtRest == "warn" {
		for _, v := range violations {
			log.Warn("encryption at rest: "+v, zap.String("at_rest", "warn"))
		}
		return dlqs, nil
	}
	return nil, fmt.Errorf("%w (set atRest: warn to start anyway):\n  - %s", ErrAtRest, strings.Join(violations, "\n  - "))
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
