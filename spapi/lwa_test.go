package spapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const (
	testClientID = "amzn1.application-oa2-client.abc"
	testSecret   = "amzn1.oa2-cs.v1.topsecret0123456789"
	testToken    = "Atc|IwEBIsecrettoken"
)

func TestTokenSendsClientCredentialsGrant(t *testing.T) {
	t.Parallel()
	var gotForm url.Values
	var gotCT, gotMethod string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotMethod, gotCT = r.Method, r.Header.Get("Content-Type")
		b, _ := io.ReadAll(r.Body)
		gotForm, _ = url.ParseQuery(string(b))
		w.Header().Set("x-amzn-RequestId", "req-lwa-1")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"`+testToken+`","token_type":"bearer","expires_in":3600,"scope":"`+spapi.Scope+`"}`)
	}))
	defer srv.Close()

	clk := fakeclock.New(t0)
	log, logs := newLogger()
	obs := &recordingObserver{}
	c := &spapi.LWAClient{HTTP: slowDoer{clk, 250 * time.Millisecond}, Endpoint: srv.URL, Log: log, Clock: clk, Observer: obs}
	tok, err := c.Token(context.Background(), testClientID, secret.New(testSecret))
	if err != nil {
		t.Fatalf("Token: %v", err)
	}

	wantForm := url.Values{
		"grant_type":    {"client_credentials"},
		"scope":         {"sellingpartnerapi::client_credential:rotation"},
		"client_id":     {testClientID},
		"client_secret": {testSecret},
	}
	if !reflect.DeepEqual(gotForm, wantForm) {
		t.Errorf("form = %v, want %v", gotForm, wantForm)
	}
	if gotMethod != http.MethodPost || !strings.HasPrefix(gotCT, "application/x-www-form-urlencoded") {
		t.Errorf("method %q content type %q", gotMethod, gotCT)
	}
	if tok.AccessToken.Reveal() != testToken || tok.ExpiresIn != time.Hour || tok.Scope != spapi.Scope {
		t.Errorf("token = %#v expires %v scope %q", tok.AccessToken, tok.ExpiresIn, tok.Scope)
	}
	if got, want := obs.all(), []observation{{"lwa", "token", 200, 250 * time.Millisecond}}; !reflect.DeepEqual(got, want) {
		t.Errorf("observations = %v, want %v", got, want)
	}
	f := onlyEntry(t, logs, zapcore.DebugLevel)
	if f["request_id"] != "req-lwa-1" || f["client_id"] != testClientID || f["op"] != "token" {
		t.Errorf("debug log fields = %v", f)
	}
	assertNoLeak(t, logs, testSecret, testToken)
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		body       string
		retryAfter string
		wantKind   error
		wantCode   string
		wantRetry  time.Duration
	}{
		{"401 invalid_client", 401, `{"error":"invalid_client","error_description":"Client authentication failed"}`, "", spapi.ErrInvalidClient, "invalid_client", 0},
		{"400 invalid_client", 400, `{"error":"invalid_client","error_description":"Client authentication failed"}`, "", spapi.ErrInvalidClient, "invalid_client", 0},
		{"401 without body", 401, ``, "", spapi.ErrInvalidClient, "", 0},
		{"400 invalid_scope", 400, `{"error":"invalid_scope","error_description":"bad scope"}`, "", spapi.ErrUnauthorized, "invalid_scope", 0},
		{"400 unauthorized_client", 400, `{"error":"unauthorized_client"}`, "", spapi.ErrUnauthorized, "unauthorized_client", 0},
		{"403 access_denied", 403, `{"error":"access_denied"}`, "", spapi.ErrUnauthorized, "access_denied", 0},
		{"400 invalid_request", 400, `{"error":"invalid_request"}`, "", spapi.ErrRequest, "invalid_request", 0},
		{"404 html", 404, `<html>not found</html>`, "", spapi.ErrRequest, "", 0},
		{"429 retry-after seconds", 429, `{}`, "7", spapi.ErrThrottled, "", 7 * time.Second},
		{"429 retry-after date", 429, `{}`, t0.Add(90 * time.Second).Format(http.TimeFormat), spapi.ErrThrottled, "", 90 * time.Second},
		{"500 server_error", 500, `{"error":"server_error"}`, "", spapi.ErrTransient, "server_error", 0},
		{"503 temporarily_unavailable", 503, `{"error":"temporarily_unavailable"}`, "3", spapi.ErrTransient, "temporarily_unavailable", 3 * time.Second},
		{"502 not json", 502, `<html>bad gateway`, "", spapi.ErrTransient, "", 0},
		{"400 temporarily_unavailable", 400, `{"error":"temporarily_unavailable"}`, "", spapi.ErrTransient, "temporarily_unavailable", 0},
		{"200 not json", 200, `{"access_token":`, "", spapi.ErrTransient, "", 0},
		{"200 without token", 200, `{"token_type":"bearer","expires_in":3600}`, "", spapi.ErrTransient, "", 0},
		{"400 echoes secret", 400, `{"error":"invalid_client","error_description":"bad secret ` + testSecret + `"}`, "", spapi.ErrInvalidClient, "invalid_client", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("x-amzn-RequestId", "req-err")
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			log, logs := newLogger()
			c := &spapi.LWAClient{Endpoint: srv.URL, Log: log, Clock: fakeclock.New(t0)}

			_, err := c.Token(context.Background(), testClientID, secret.New(testSecret))

			var e *spapi.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *spapi.Error", err)
			}
			if !errors.Is(err, tc.wantKind) {
				t.Errorf("error %v is not %v", err, tc.wantKind)
			}
			if e.StatusCode != tc.status || e.Code != tc.wantCode || e.RetryAfter != tc.wantRetry || e.RequestID != "req-err" {
				t.Errorf("got status %d code %q retry %v request id %q", e.StatusCode, e.Code, e.RetryAfter, e.RequestID)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error string leaks the secret: %q", err.Error())
			}
			f := onlyEntry(t, logs, zapcore.WarnLevel)
			if f["request_id"] != "req-err" || f["status"] != int64(tc.status) {
				t.Errorf("warn log fields = %v", f)
			}
			assertNoLeak(t, logs, testSecret)
		})
	}
}

func TestTokenWithoutResponse(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name     string
		endpoint string
		ctx      context.Context
		wantAlso error
	}{
		{"connection refused", closed.URL, context.Background(), nil},
		{"context cancelled", hang.URL, cancelled, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			obs := &recordingObserver{}
			c := &spapi.LWAClient{Endpoint: tc.endpoint, Observer: obs, Clock: fakeclock.New(t0)}
			_, err := c.Token(tc.ctx, testClientID, secret.New(testSecret))
			if !errors.Is(err, spapi.ErrTransient) || !spapi.Retryable(err) {
				t.Errorf("error %v is not transient", err)
			}
			if tc.wantAlso != nil && !errors.Is(err, tc.wantAlso) {
				t.Errorf("error %v is not %v", err, tc.wantAlso)
			}
			if got := obs.all(); len(got) != 1 || got[0].status != 0 {
				t.Errorf("observations = %v, want one with status 0", got)
			}
		})
	}
}

func TestTokenRejectsEmptyArguments(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	tests := []struct {
		name     string
		clientID string
		secret   secret.Value
	}{
		{"no client id", "", secret.New(testSecret)},
		{"no secret", testClientID, secret.Value{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &spapi.LWAClient{Endpoint: srv.URL}
			if _, err := c.Token(context.Background(), tc.clientID, tc.secret); !errors.Is(err, spapi.ErrRequest) {
				t.Errorf("error %v is not ErrRequest", err)
			}
		})
	}
	if hits.Load() != 0 {
		t.Errorf("server was called %d times", hits.Load())
	}
}

// LWAError is LWAClient's classification, exported for lwacreds: it must agree with Token.
func TestLWAErrorClassifies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		header    http.Header
		body      string
		wantKind  error
		wantCode  string
		wantMsg   string
		wantReq   string
		wantRetry time.Duration
	}{
		{"400 invalid_client", 400, nil, `{"error":"invalid_client","error_description":"Client authentication failed"}`, spapi.ErrInvalidClient, "invalid_client", "Client authentication failed", "", 0},
		{"401 without body", 401, http.Header{"X-Amzn-Requestid": {"req-1"}}, ``, spapi.ErrInvalidClient, "", "", "req-1", 0},
		{"403 access_denied", 403, nil, `{"error":"access_denied"}`, spapi.ErrUnauthorized, "access_denied", "", "", 0},
		{"429 retry-after", 429, http.Header{"Retry-After": {"7"}}, `{}`, spapi.ErrThrottled, "", "", "", 7 * time.Second},
		{"503 temporarily_unavailable", 503, nil, `{"error":"temporarily_unavailable"}`, spapi.ErrTransient, "temporarily_unavailable", "", "", 0},
		{"400 other", 400, nil, `{"error":"invalid_request"}`, spapi.ErrRequest, "invalid_request", "", "", 0},
		{"echoed secret scrubbed", 401, nil, `{"error":"invalid_client","error_description":"bad secret ` + testSecret + `"}`, spapi.ErrInvalidClient, "invalid_client", "bad secret " + secret.Redacted, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := spapi.LWAError(tc.status, tc.header, []byte(tc.body), t0, testSecret)
			if !errors.Is(e, tc.wantKind) || e.API != "lwa" || e.Op != "token" || e.StatusCode != tc.status ||
				e.Code != tc.wantCode || e.Message != tc.wantMsg || e.RequestID != tc.wantReq || e.RetryAfter != tc.wantRetry {
				t.Errorf("LWAError = %#v, want kind %v code %q message %q request id %q retry %v", e, tc.wantKind, tc.wantCode, tc.wantMsg, tc.wantReq, tc.wantRetry)
			}
			if strings.Contains(e.Error(), testSecret) {
				t.Errorf("error string leaks the secret: %q", e.Error())
			}
		})
	}
}
