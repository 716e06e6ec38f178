package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/internal/webhook"
	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// TestReloadAddsAWebhookWithItsKeyFromSecretsManager: a webhook added by SIGHUP, its key in a
// Secrets Manager secret of its own, is told of the next promotion with a signature made with
// that key; the key never reaches the log.
func TestReloadAddsAWebhookWithItsKeyFromSecretsManager(t *testing.T) {
	t.Parallel()
	r, err := start(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := metric(t, r.addr, `lwa_rotator_webhook_acknowledged{application="demo-app"}`); ok {
		t.Fatal("a webhook gauge without a webhook configured")
	}
	const key = "daemon-test-webhook-key-0123456789abcdefghij"
	keyID := r.env.SecretID + "-webhook-key"
	if _, err := r.env.AWS.SecretsManager.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String(keyID), SecretString: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		versions []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if !webhook.Verify([]byte(key), time.Now(), 5*time.Minute, req.Header.Get(webhook.TimestampHeader), req.Header.Get(webhook.SignatureHeader), body) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev webhook.Event
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		versions = append(versions, ev.VersionID)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)

	raw, err := os.ReadFile(r.env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	// The generated file ends with the application's entry: the block belongs to it.
	edited := string(raw) + "    webhook:\n      url: " + srv.URL + "/hook\n      hmacKeySecretId: " + keyID + "\n"
	if err := os.WriteFile(r.env.ConfigPath, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	r.signals <- syscall.SIGHUP
	eventually(t, 20*time.Second, "the webhook running after the reload", func() bool {
		v, ok := metric(t, r.addr, `lwa_rotator_webhook_acknowledged{application="demo-app"}`)
		return ok && v == 1
	})
	r.signals <- syscall.SIGUSR1
	if err := r.env.WaitRotated(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the promotion acknowledged", func() bool {
		n, _ := metric(t, r.addr, `lwa_rotator_webhook_deliveries_total{application="demo-app",result="acknowledged"}`)
		return n == 1
	})
	cur, err := r.env.Store.Current(context.Background(), r.env.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(versions) != 1 || versions[0] != cur.ID {
		t.Errorf("receiver got versions %v, want [%s]", versions, cur.ID)
	}
	for _, e := range r.logs.All() {
		line := e.Message + " " + toJSON(e.ContextMap())
		if strings.Contains(line, key) || strings.Contains(line, srv.URL) {
			t.Errorf("a log line holds the signing key or the webhook URL: %s", line)
		}
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
