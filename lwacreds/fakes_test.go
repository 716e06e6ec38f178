package lwacreds_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	clientID   = "amzn1.application-oa2-client.consumer"
	secretName = "lwa/consumer"
)

// Version ids, as ClientRequestToken: Secrets Manager wants 32 to 64 characters.
const (
	v1 = "11111111-1111-4111-8111-111111111111"
	v2 = "22222222-2222-4222-8222-222222222222"
)

// countingSM is the shared in-memory Secrets Manager (fakesm) holding secretName, as the Store
// reads it, plus what the Store's tests assert that fakesm does not record: reads per staging
// label (fakesm counts per operation) and how many ran at once. Failures and holding a read
// go through fakesm's Fault hook.
type countingSM struct {
	sm *fakesm.SM

	mu       sync.Mutex
	reads    map[string]int // label → GetSecretValue calls
	inFlight int
	maxFl    int           // most reads ever running at once
	fail     error         // returned by every read while set
	gate     chan struct{} // when set, every read waits for it to close
}

// newSM creates secretName without a value, as CreateSecret without SecretString does: no
// version carries AWSCURRENT until the first promote.
func newSM(t *testing.T) *countingSM {
	t.Helper()
	c := &countingSM{reads: map[string]int{}}
	c.sm = fakesm.New(fakesm.Options{Fault: c.fault})
	if _, err := c.sm.CreateSecret(context.Background(), &sm.CreateSecretInput{Name: aws.String(secretName)}); err != nil {
		t.Fatalf("creating %s: %v", secretName, err)
	}
	return c
}

func (c *countingSM) fault(op, _ string) fakesm.Fault {
	if op != fakesm.OpGetSecretValue {
		return fakesm.Fault{}
	}
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		<-gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return fakesm.Fault{Err: c.fail}
}

func (c *countingSM) GetSecretValue(ctx context.Context, in *sm.GetSecretValueInput, optFns ...func(*sm.Options)) (*sm.GetSecretValueOutput, error) {
	stage := aws.ToString(in.VersionStage)
	if stage == "" && in.VersionId == nil {
		stage = vault.StageCurrent // AWS's documented default
	}
	c.mu.Lock()
	c.reads[stage]++
	c.inFlight++
	c.maxFl = max(c.maxFl, c.inFlight)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.inFlight--
	}()
	return c.sm.GetSecretValue(ctx, in, optFns...)
}

// promote stores r as a new version the way the daemon's PutSecretValue with the default stage
// does: AWSCURRENT moves to it, AWSPREVIOUS to the version that had AWSCURRENT.
func (c *countingSM) promote(t *testing.T, versionID string, r vault.Record, format vault.Format) {
	t.Helper()
	b, err := vault.Encode(r, format)
	if err != nil {
		t.Fatalf("encoding record: %v", err)
	}
	c.putRaw(t, versionID, string(b))
}

func (c *countingSM) putRaw(t *testing.T, versionID, body string) {
	t.Helper()
	if _, err := c.sm.PutSecretValue(context.Background(), &sm.PutSecretValueInput{
		SecretId: aws.String(secretName), ClientRequestToken: aws.String(versionID), SecretString: aws.String(body),
	}); err != nil {
		t.Fatalf("putting version %s: %v", versionID, err)
	}
}

func (c *countingSM) setFail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = err
}

func (c *countingSM) setGate(g chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate = g
}

func (c *countingSM) readCount(stage string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads[stage]
}

func (c *countingSM) maxInFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxFl
}

// lwaDoer is the shared LWA simulator's token endpoint (spapisim's handler, in process) as the
// Doer a TokenSource calls. Whether a secret is accepted, the token and every error body are the
// simulator's; the Doer records each form as sent and adds only what spapisim cannot be told:
//   - spapisim answers the rotation scope's client_credentials grant alone, while lwacreds sends
//     any scope and the refresh-token grant: after recording the form, the Doer hands the
//     simulator the same client id and secret as the grant it knows.
//   - spapisim.Options cannot set the token lifetime (amazon.Rules.TokenLifetime), so lifetime
//     rewrites expires_in.
//   - echo puts the submitted secrets in an invalid_client's error_description, as a careless
//     server might; spapisim's bodies never do.
type lwaDoer struct {
	h        http.Handler
	echo     bool
	lifetime int // expires_in; 0 keeps the simulator's

	mu    sync.Mutex
	forms []url.Values
}

func (l *lwaDoer) calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.forms)
}

func (l *lwaDoer) form(i int) url.Values {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.forms[i]
}

func (l *lwaDoer) Do(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.forms = append(l.forms, form)
	l.mu.Unlock()

	asSim := url.Values{
		"grant_type": {"client_credentials"}, "scope": {spapi.Scope},
		"client_id": {form.Get("client_id")}, "client_secret": {form.Get("client_secret")},
	}
	simReq, err := http.NewRequestWithContext(req.Context(), req.Method, req.URL.String(), strings.NewReader(asSim.Encode()))
	if err != nil {
		return nil, err
	}
	simReq.Header = req.Header.Clone()
	rec := httptest.NewRecorder()
	l.h.ServeHTTP(rec, simReq)
	if err := req.Context().Err(); err != nil {
		return nil, err // a client whose request was abandoned gets no response
	}
	resp := rec.Result()
	switch {
	case l.echo && resp.StatusCode == http.StatusUnauthorized:
		rewriteBody(resp, func(m map[string]any) {
			m["error_description"] = fmt.Sprint(m["error_description"], " for secret ", form.Get("client_secret"), " and refresh token ", form.Get("refresh_token"))
		})
	case l.lifetime != 0 && resp.StatusCode == http.StatusOK:
		rewriteBody(resp, func(m map[string]any) { m["expires_in"] = l.lifetime })
	}
	return resp, nil
}

func rewriteBody(resp *http.Response, edit func(map[string]any)) {
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m) // the simulator's bodies are JSON objects
	edit(m)
	b, _ := json.Marshal(m)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
}

// lwaIDs makes what the simulator invents predictable: access tokens Atza|token-1, -2, …; the
// first secret a rotation mints is secret-two.
type lwaIDs struct {
	mu                     sync.Mutex
	tokens, secrets, uuids int
}

func (g *lwaIDs) ClientSecret() secret.Value {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.secrets++
	if g.secrets == 1 {
		return secret.New("secret-two")
	}
	return secret.New(fmt.Sprintf("secret-%d", g.secrets+1))
}

func (g *lwaIDs) AccessToken() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokens++
	return fmt.Sprintf("Atza|token-%d", g.tokens)
}

func (g *lwaIDs) UUID() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.uuids++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", g.uuids)
}

// record makes a stored record for secret s expiring 180 days after t0, with the previous
// secret expiring at prevExp (zero: not recorded).
func record(s string, prevExp time.Time) vault.Record {
	return vault.Record{ClientID: clientID, ClientSecret: secret.New(s), ExpiresAt: t0.Add(180 * 24 * time.Hour), PreviousExpiresAt: prevExp}
}

// assertNoSecret fails when any of the strings holds any of the plaintexts.
func assertNoSecret(t *testing.T, plaintexts []string, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		for _, p := range plaintexts {
			if p != "" && strings.Contains(o, p) {
				t.Errorf("output holds a secret: %q", strings.ReplaceAll(o, p, "<THE SECRET>"))
			}
		}
	}
}

// waitFor polls cond with a bound, for states reached by other goroutines.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

var errBoom = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform secretsmanager:GetSecretValue", Fault: smithy.FaultClient}
