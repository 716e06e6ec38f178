package spapisim_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	clientID    = "amzn1.application-oa2-client.sim1"
	firstSecret = "amzn1.oa2-cs.v1.first0000000000000000000000000000"
	expiryQ     = "https://sqs.us-east-1.amazonaws.com/000000000000/expiry"
	newSecretQ  = "https://sqs.us-east-1.amazonaws.com/000000000000/new-secret"
)

type delivery struct{ queue, body string }

// fakeDeliverer captures bodies and signals each one, so a test can wait for a delivery made
// by a background goroutine without sleeping.
type fakeDeliverer struct {
	mu   sync.Mutex
	got  []delivery
	fail func(body string) error // nil: accept
	sent chan struct{}
}

func newFakeDeliverer() *fakeDeliverer { return &fakeDeliverer{sent: make(chan struct{}, 100)} }

func (f *fakeDeliverer) Deliver(_ context.Context, queue, body string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail(body)
	}
	f.got = append(f.got, delivery{queue, body})
	f.sent <- struct{}{}
	return nil
}

func (f *fakeDeliverer) all() []delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]delivery(nil), f.got...)
}

// waitSent waits for n more deliveries; the timeout only guards against a hang.
func (f *fakeDeliverer) waitSent(t *testing.T, n int) {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for range n {
		select {
		case <-f.sent:
		case <-timeout.C:
			t.Fatalf("timed out waiting for a delivery")
		}
	}
}

type env struct {
	sim *spapisim.Sim
	srv *httptest.Server
	clk *fakeclock.Fake
	dlv *fakeDeliverer
	lwa *spapi.LWAClient
}

func newEnv(t *testing.T, apps ...spapisim.App) *env {
	t.Helper()
	return newEnvWith(t, spapisim.Options{}, apps...)
}

// newEnvWith is newEnv with options; the clock and the deliverer are always the env's.
func newEnvWith(t *testing.T, o spapisim.Options, apps ...spapisim.App) *env {
	t.Helper()
	e := &env{clk: fakeclock.New(t0), dlv: newFakeDeliverer()}
	o.Clock, o.Deliver = e.clk, e.dlv
	e.sim = spapisim.New(o)
	e.srv = httptest.NewServer(e.sim.Handler())
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.sim.Close)
	e.lwa = &spapi.LWAClient{Endpoint: e.srv.URL + "/auth/o2/token", Clock: e.clk}
	if len(apps) == 0 {
		apps = []spapisim.App{defaultApp()}
	}
	for _, a := range apps {
		if err := e.sim.Register(a); err != nil {
			t.Fatalf("Register: %v", err)
		}
	}
	return e
}

func defaultApp() spapisim.App {
	return spapisim.App{
		ClientID: clientID, ApplicationID: "amzn1.sp.solution.sim1", Secret: secret.New(firstSecret),
		SecretExpiresAt: t0.Add(30 * 24 * time.Hour), ExpiryQueueURL: expiryQ, NewSecretQueueURL: newSecretQ,
	}
}

// app is a fresh rotate client, so its local rate limit never hides the simulator's.
func (e *env) app() *spapi.AppClient {
	return &spapi.AppClient{Endpoints: map[spapi.Region]string{spapi.RegionNA: e.srv.URL}, Clock: e.clk}
}

// rotate mints a token with sec and calls rotate.
func (e *env) rotate(t *testing.T, sec string) error {
	t.Helper()
	tok, err := e.lwa.Token(context.Background(), clientID, secret.New(sec))
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	_, err = e.app().RotateClientSecret(context.Background(), clientID, spapi.RegionNA, tok.AccessToken)
	return err
}

// notification is the parsed shape both notification types share.
type notification struct {
	NotificationVersion  string                     `json:"notificationVersion"`
	NotificationType     string                     `json:"notificationType"`
	PayloadVersion       string                     `json:"payloadVersion"`
	EventTime            string                     `json:"eventTime"`
	Payload              map[string]json.RawMessage `json:"payload"`
	NotificationMetadata map[string]string          `json:"notificationMetadata"`
}

func parse(t *testing.T, body string) notification {
	t.Helper()
	var n notification
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil {
		t.Fatalf("notification does not parse: %v", err)
	}
	return n
}

func (n notification) fields(t *testing.T, key string) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(n.Payload[key], &m); err != nil {
		t.Fatalf("payload %s: %v", key, err)
	}
	return m
}

func ids(t *testing.T, ds []delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, parse(t, d.body).NotificationMetadata["notificationId"])
	}
	return out
}
