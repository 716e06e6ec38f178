package spapisim_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const day = 24 * time.Hour

func TestToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		clientID string
		secret   string
		advance  time.Duration
		wantKind error
	}{
		{"valid secret", clientID, firstSecret, 0, nil},
		{"just before expiry", clientID, firstSecret, 30*day - time.Millisecond, nil},
		{"wrong secret", clientID, "amzn1.oa2-cs.v1.wrong", 0, spapi.ErrInvalidClient},
		{"unknown client", "amzn1.application-oa2-client.nobody", firstSecret, 0, spapi.ErrInvalidClient},
		{"expired secret", clientID, firstSecret, 30 * day, spapi.ErrInvalidClient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.clk.Advance(tc.advance)
			tok, err := e.lwa.Token(context.Background(), tc.clientID, secret.New(tc.secret))
			if tc.wantKind == nil {
				if err != nil || tok.AccessToken.IsZero() || tok.ExpiresIn != time.Hour || tok.Scope != spapi.Scope {
					t.Fatalf("Token = %+v, %v", tok, err)
				}
			} else if !errors.Is(err, tc.wantKind) {
				t.Fatalf("error %v, want %v", err, tc.wantKind)
			}
			got := e.sim.Received()
			if len(got) != 1 || got[0].Endpoint != "token" || got[0].ClientID != tc.clientID || got[0].RequestID == "" || got[0].Time != e.clk.Now() {
				t.Errorf("Received = %+v", got)
			}
		})
	}
}

func TestTokenForm(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantCode   string
	}{
		{"plural scope", url.Values{"grant_type": {"client_credentials"}, "scope": {"sellingpartnerapi::client_credentials:rotation"}}, 400, "invalid_scope"},
		{"no scope", url.Values{"grant_type": {"client_credentials"}}, 400, "invalid_scope"},
		{"refresh grant", url.Values{"grant_type": {"refresh_token"}, "scope": {spapi.Scope}}, 400, "unsupported_grant_type"},
		{"exact", url.Values{"grant_type": {"client_credentials"}, "scope": {spapi.Scope}}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tc.form.Set("client_id", clientID)
			tc.form.Set("client_secret", firstSecret)
			resp, err := http.PostForm(e.srv.URL+"/auth/o2/token", tc.form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantCode) {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tc.wantStatus, tc.wantCode)
			}
			if resp.Header.Get("x-amzn-RequestId") == "" {
				t.Error("no x-amzn-RequestId header")
			}
		})
	}
}

func TestRotateStatuses(t *testing.T) {
	t.Parallel()
	notEnrolled := defaultApp()
	notEnrolled.NewSecretQueueURL = ""
	tests := []struct {
		name       string
		app        spapisim.App
		token      func(e *env) secret.Value
		before     func(t *testing.T, e *env) // runs between minting the token and the call
		wantStatus int
		wantKind   error
		wantCalls  int
	}{
		{"204", defaultApp(), mint, nil, 204, nil, 1},
		{"403 unknown token", defaultApp(), func(*env) secret.Value { return secret.New("Atc|forged") }, nil, 403, spapi.ErrUnauthorized, 0},
		{"403 expired token", defaultApp(), mint, func(_ *testing.T, e *env) { e.clk.Advance(time.Hour) }, 403, spapi.ErrUnauthorized, 0},
		{"400 not enrolled", notEnrolled, mint, nil, 400, spapi.ErrNotEnrolled, 0},
		{"429 within the interval", defaultApp(), mint, func(t *testing.T, e *env) {
			if err := e.rotate(t, firstSecret); err != nil {
				t.Fatalf("first rotate: %v", err)
			}
			e.clk.Advance(59 * time.Second)
		}, 429, spapi.ErrThrottled, 1},
		{"204 after the interval", defaultApp(), mint, func(t *testing.T, e *env) {
			if err := e.rotate(t, firstSecret); err != nil {
				t.Fatalf("first rotate: %v", err)
			}
			e.clk.Advance(time.Minute)
		}, 204, nil, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.app)
			tok := tc.token(e)
			if tc.before != nil {
				tc.before(t, e)
			}
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/applications/2023-11-30/clientSecret", nil)
			req.Header.Set("x-amz-access-token", tok.Reveal())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || resp.Header.Get("x-amzn-RateLimit-Limit") != "0.0167" || resp.Header.Get("x-amzn-RequestId") == "" {
				t.Errorf("status %d headers %v, want %d", resp.StatusCode, resp.Header, tc.wantStatus)
			}
			if got := e.sim.RotateCalls(clientID); got != tc.wantCalls {
				t.Errorf("RotateCalls = %d, want %d", got, tc.wantCalls)
			}
			// The same call through the real client maps to the right sentinel.
			if tc.wantKind != nil {
				_, err := e.app().RotateClientSecret(context.Background(), clientID, spapi.RegionNA, tok)
				if !errors.Is(err, tc.wantKind) {
					t.Errorf("client error %v, want %v", err, tc.wantKind)
				}
			}
		})
	}
}

// TestRotateInterval: calls a millisecond apart; the simulator accepts the first only, unless
// its limit is lifted (a negative interval) or shorter than a millisecond.
func TestRotateInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		interval  time.Duration
		wantCalls int
	}{
		{"Amazon's minute (zero)", 0, 1},
		{"a second", time.Second, 1},
		{"a microsecond", time.Microsecond, 3},
		{"lifted (negative)", -1, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, spapisim.Options{RotateInterval: tc.interval})
			var refused int
			for range 3 {
				err := e.rotate(t, firstSecret)
				switch {
				case errors.Is(err, spapi.ErrThrottled):
					refused++
				case err != nil:
					t.Fatalf("rotate: %v", err)
				}
				e.clk.Advance(time.Millisecond)
			}
			if got := e.sim.RotateCalls(clientID); got != tc.wantCalls || refused != 3-tc.wantCalls {
				t.Errorf("RotateCalls = %d with %d refused (429), want %d and %d", got, refused, tc.wantCalls, 3-tc.wantCalls)
			}
		})
	}
}

func mint(e *env) secret.Value {
	tok, err := e.lwa.Token(context.Background(), clientID, secret.New(firstSecret))
	if err != nil {
		panic("minting a token: " + err.Error())
	}
	return tok.AccessToken
}

func TestSecretLifetimes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		oldExpiresIn  time.Duration // the registered secret's remaining life at rotation
		wantOldExpiry time.Duration // after rotation, from t0
	}{
		{"old secret cut to 7 days", 30 * day, 7 * day},
		{"old secret already closer keeps its expiry", 2 * day, 2 * day},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := defaultApp()
			a.SecretExpiresAt = t0.Add(tc.oldExpiresIn)
			e := newEnv(t, a)
			if err := e.rotate(t, firstSecret); err != nil {
				t.Fatalf("rotate: %v", err)
			}
			newSec, newExp, ok := e.sim.Newest(clientID)
			if !ok || newSec.Equal(secret.New(firstSecret)) || !newExp.Equal(t0.Add(180*day)) {
				t.Fatalf("Newest = %v %v %v", newSec, newExp, ok)
			}
			if !regexp.MustCompile(`^amzn1\.oa2-cs\.v1\.[0-9a-f]{64}$`).MatchString(newSec.Reveal()) {
				t.Errorf("new secret has the wrong shape")
			}
			body := parse(t, e.dlv.all()[0].body).fields(t, "applicationOAuthClientNewSecret")
			if want := t0.Add(tc.wantOldExpiry).Format("2006-01-02T15:04:05.000Z"); body["oldClientSecretExpiryTime"] != want {
				t.Errorf("oldClientSecretExpiryTime = %s, want %s", body["oldClientSecretExpiryTime"], want)
			}

			old := secret.New(firstSecret)
			checks := []struct {
				at           time.Duration
				sec          secret.Value
				wantValid    bool
				wantTokenErr error
			}{
				{tc.wantOldExpiry - time.Millisecond, old, true, nil},
				{tc.wantOldExpiry, old, false, spapi.ErrInvalidClient},
				{180*day - time.Millisecond, newSec, true, nil},
				{180 * day, newSec, false, spapi.ErrInvalidClient},
			}
			for _, c := range checks {
				e.clk.Set(t0.Add(c.at))
				if got := e.sim.Valid(clientID, c.sec); got != c.wantValid {
					t.Errorf("at t0+%v: Valid = %v, want %v", c.at, got, c.wantValid)
				}
				_, err := e.lwa.Token(context.Background(), clientID, c.sec)
				if c.wantTokenErr == nil && err != nil || c.wantTokenErr != nil && !errors.Is(err, c.wantTokenErr) {
					t.Errorf("at t0+%v: Token error %v, want %v", c.at, err, c.wantTokenErr)
				}
			}
		})
	}
}

var (
	msTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

func checkEnvelope(t *testing.T, n notification, typ string) {
	t.Helper()
	if n.NotificationVersion != "1.0" || n.NotificationType != typ || n.PayloadVersion != "2023-11-30" || !msTime.MatchString(n.EventTime) {
		t.Errorf("envelope = %+v", n)
	}
	m := n.NotificationMetadata
	if len(m) != 4 || m["applicationId"] != "amzn1.sp.solution.sim1" || !uuidRe.MatchString(m["subscriptionId"]) ||
		!msTime.MatchString(m["publishTime"]) || !uuidRe.MatchString(m["notificationId"]) {
		t.Errorf("notificationMetadata = %v", m)
	}
}

func TestNewSecretNotification(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.clk.Advance(1234 * time.Microsecond) // sub-millisecond parts must not leak into the JSON
	if err := e.rotate(t, firstSecret); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	got := e.dlv.all()
	if len(got) != 1 || got[0].queue != newSecretQ {
		t.Fatalf("deliveries = %v", got)
	}
	n := parse(t, got[0].body)
	checkEnvelope(t, n, "APPLICATION_OAUTH_CLIENT_NEW_SECRET")
	newSec, newExp, _ := e.sim.Newest(clientID)
	p := n.fields(t, "applicationOAuthClientNewSecret")
	want := map[string]string{
		"clientId":                  clientID,
		"newClientSecret":           newSec.Reveal(),
		"newClientSecretExpiryTime": newExp.Format("2006-01-02T15:04:05.000Z"),
		"oldClientSecretExpiryTime": "2025-03-08T12:00:00.001Z",
	}
	if len(p) != len(want) || len(n.Payload) != 1 {
		t.Errorf("payload = %v", n.Payload)
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %q, want %q", k, p[k], v)
		}
	}
	if n.EventTime != "2025-03-01T12:00:00.001Z" {
		t.Errorf("eventTime = %s", n.EventTime)
	}
}

func TestExpiryNotice(t *testing.T) {
	t.Parallel()
	noExpiryQueue := defaultApp()
	noExpiryQueue.ExpiryQueueURL = ""
	explicit := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		app       spapisim.App
		expiresAt time.Time
		wantQueue string
		wantTime  string
	}{
		{"newest expiry", defaultApp(), time.Time{}, expiryQ, "2025-03-31T12:00:00.000Z"},
		{"given expiry", defaultApp(), explicit, expiryQ, "2025-04-01T00:00:00.000Z"},
		{"falls back to the new-secret queue", noExpiryQueue, time.Time{}, newSecretQ, "2025-03-31T12:00:00.000Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.app)
			id, err := e.sim.SendExpiryNotice(context.Background(), clientID, tc.expiresAt)
			if err != nil {
				t.Fatal(err)
			}
			got := e.dlv.all()
			if len(got) != 1 || got[0].queue != tc.wantQueue {
				t.Fatalf("deliveries = %v", got)
			}
			n := parse(t, got[0].body)
			checkEnvelope(t, n, "APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY")
			p := n.fields(t, "applicationOAuthClientSecretExpiry")
			if len(p) != 3 || p["clientId"] != clientID || p["clientSecretExpiryTime"] != tc.wantTime || p["clientSecretExpiryReason"] != "PERIODIC_ROTATION" {
				t.Errorf("payload = %v", p)
			}
			if n.NotificationMetadata["notificationId"] != id {
				t.Errorf("returned id %s, body has %s", id, n.NotificationMetadata["notificationId"])
			}
		})
	}
	t.Run("unknown client", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		if _, err := e.sim.SendExpiryNotice(context.Background(), "nobody", time.Time{}); err == nil {
			t.Error("want an error")
		}
	})
}
