package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/internal/webhook"
	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// TestSIGUSR1RotationDeliversOneSignedWebhookEvent: the real binary, one rotation, and a local
// receiver that verifies each request as a consumer would: exactly one genuine event arrives,
// naming the version now in AWSCURRENT, and the metrics say it was acknowledged.
func TestSIGUSR1RotationDeliversOneSignedWebhookEvent(t *testing.T) {
	t.Parallel()
	key := "integration-webhook-key-0123456789abcdefghij"
	keyPath := filepath.Join(t.TempDir(), "hmac-key")
	if err := os.WriteFile(keyPath, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		events []webhook.Event
		bodies []string
		forged int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !webhook.Verify([]byte(key), time.Now(), 5*time.Minute, r.Header.Get(webhook.TimestampHeader), r.Header.Get(webhook.SignatureHeader), body) {
			forged++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev webhook.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		events, bodies = append(events, ev), append(bodies, string(body))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour,
		AppConfig: "webhook:\n  url: " + srv.URL + "/lwa\n  hmacKeyFile: " + keyPath + "\n"})
	d := startDaemon(t, env)
	if v, ok := d.scrape(t, `lwa_rotator_webhook_acknowledged{application="demo-app"}`); !ok || v != 1 {
		t.Fatalf("acknowledged gauge before any promotion: %v (present %v), want 1", v, ok)
	}
	d.signal(t, syscall.SIGUSR1)
	assertRotated(t, env, env.FirstSecret)
	eventually(t, 10*time.Second, "the webhook's acknowledgement in the metrics", func() bool {
		acked, _ := d.scrape(t, `lwa_rotator_webhook_acknowledged{application="demo-app"}`)
		n, _ := d.scrape(t, `lwa_rotator_webhook_deliveries_total{application="demo-app",result="acknowledged"}`)
		return acked == 1 && n == 1
	})
	cur, err := env.Store.Current(context.Background(), env.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || forged != 0 {
		t.Fatalf("receiver got %d genuine events and %d forged requests, want 1 and 0", len(events), forged)
	}
	ev := events[0]
	if ev.Application != "demo-app" || ev.SecretID != env.SecretID || ev.VersionID != cur.ID ||
		!ev.ExpiresAt.Equal(cur.Record.ExpiresAt) || !ev.PreviousExpiresAt.Equal(cur.Record.PreviousExpiresAt) || ev.EventID == "" {
		t.Errorf("event %+v does not describe AWSCURRENT (version %s, expiry %v, previous %v)", ev, cur.ID, cur.Record.ExpiresAt, cur.Record.PreviousExpiresAt)
	}
	if failed, _ := d.scrape(t, `lwa_rotator_webhook_deliveries_total{application="demo-app",result="failed"}`); failed != 0 {
		t.Errorf("%v failed attempts against a receiver that always acknowledged", failed)
	}
	if strings.Contains(bodies[0], cur.Record.ClientSecret.Reveal()) || strings.Contains(bodies[0], env.FirstSecret.Reveal()) {
		t.Error("the event carries a client secret")
	}
	newest, _, _ := env.Sim.Newest(env.ClientID)
	assertNoSecret(t, d.output(), env.FirstSecret, newest)
	if strings.Contains(d.output(), key) || strings.Contains(d.output(), srv.URL) {
		t.Error("the daemon's output holds the signing key or the webhook URL")
	}
}
