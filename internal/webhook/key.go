package webhook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// MinKeyBytes is the shortest signing key accepted: HMAC-SHA256 is only as strong as its key,
// and 32 bytes is the hash's own size.
const MinKeyBytes = 32

// SecretsManager is the one Secrets Manager call the webhook makes: reading a signing key. The
// daemon's IAM policy grants it on the key's secret only (deploy/iam).
type SecretsManager interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// KeySource says where an application's signing key lives: exactly one field is set.
type KeySource struct {
	SecretID string
	File     string
}

// field names the configuration field the key comes from, for errors.
func (k KeySource) field() string {
	if k.SecretID != "" {
		return "hmacKeySecretId"
	}
	return "hmacKeyFile"
}

var errShortKey = fmt.Errorf("the signing key is shorter than %d bytes", MinKeyBytes)

// readKey fetches the key. Surrounding whitespace (a file's final newline) is not part of it.
// Errors say where the key was read from, never what it holds.
func readKey(ctx context.Context, sm SecretsManager, k KeySource) (secret.Value, error) {
	var raw string
	switch {
	case k.SecretID != "":
		if sm == nil {
			return secret.Value{}, errors.New("reading the signing key: no Secrets Manager client")
		}
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(k.SecretID)})
		if err != nil {
			return secret.Value{}, fmt.Errorf("reading the signing key from Secrets Manager: %w", err)
		}
		raw = aws.ToString(out.SecretString)
		if out.SecretString == nil {
			raw = string(out.SecretBinary)
		}
	case k.File != "":
		b, err := os.ReadFile(k.File)
		if err != nil {
			// The path is configuration, not a secret; the *PathError names it and the cause.
			return secret.Value{}, fmt.Errorf("reading the signing key file: %w", err)
		}
		raw = string(b)
	default:
		return secret.Value{}, errors.New("no signing key configured")
	}
	raw = strings.TrimSpace(raw)
	if len(raw) < MinKeyBytes {
		return secret.Value{}, errShortKey
	}
	return secret.New(raw), nil
}
