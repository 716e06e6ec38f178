package vault_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const secretName = "spapi/lwa/app-one"

// fixture is a store over the model holding one secret with sampleRecord as AWSCURRENT.
type fixture struct {
	store  *vault.Store
	fake   *fakesm.SM
	logs   *observer.ObservedLogs
	oldVer string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	fake := fakesm.New(fakesm.Options{})
	s := &vault.Store{SM: fake, Log: zap.New(core)}
	if _, err := s.Create(context.Background(), secretName, "alias/lwa", sampleRecord()); err != nil {
		t.Fatalf("Create: %v", err)
	}
	cur, err := s.Current(context.Background(), secretName)
	if err != nil {
		t.Fatalf("Current: %v", err)
	}
	t.Cleanup(func() { assertNoLeak(t, logs) })
	return fixture{store: s, fake: fake, logs: logs, oldVer: cur.ID}
}

// moveCurrent moves AWSCURRENT as another replica would, straight on the model.
func (f fixture) moveCurrent(t *testing.T, to, from string) {
	t.Helper()
	if _, err := f.fake.UpdateSecretVersionStage(context.Background(), &sm.UpdateSecretVersionStageInput{SecretId: aws.String(secretName),
		VersionStage: aws.String(vault.StageCurrent), MoveToVersionId: aws.String(to), RemoveFromVersionId: aws.String(from)}); err != nil {
		t.Fatalf("moving AWSCURRENT to %s: %v", to, err)
	}
}

// assertNoLeak fails if any log line, message or field, contains the plaintext secret.
func assertNoLeak(t *testing.T, logs *observer.ObservedLogs) {
	t.Helper()
	for _, e := range logs.All() {
		if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, plain) || strings.Contains(line, newPlain) {
			t.Errorf("log line leaks a secret: %s", line)
		}
	}
}

const newPlain = "amzn1.oa2-cs.v1.NEW-SECRET-also-hidden-0987654321"

func newRecord() vault.Record {
	r := sampleRecord()
	r.ClientSecret = secret.New(newPlain)
	r.PreviousExpiresAt, r.ExpiresAt = r.ExpiresAt, r.ExpiresAt.AddDate(0, 6, 0)
	return r
}

func noLeak(t *testing.T, err error) {
	t.Helper()
	if err != nil && (strings.Contains(err.Error(), plain) || strings.Contains(err.Error(), newPlain)) {
		t.Fatalf("error leaks a secret: %v", err)
	}
}
