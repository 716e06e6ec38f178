package spapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// scriptedServer answers each request with the next scripted reply (the last one repeats) and
// records what it saw.
type reply struct {
	status     int
	body       string
	retryAfter string
}

type scriptedServer struct {
	*httptest.Server
	mu      sync.Mutex
	replies []reply
	seen    []*http.Request
	bodies  []string
}

func newScripted(t *testing.T, replies ...reply) *scriptedServer {
	s := &scriptedServer{replies: replies}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		rp := s.replies[min(len(s.seen), len(s.replies)-1)]
		s.seen = append(s.seen, r)
		s.bodies = append(s.bodies, string(b))
		s.mu.Unlock()
		w.Header().Set("x-amzn-RequestId", "req-rot")
		if rp.retryAfter != "" {
			w.Header().Set("Retry-After", rp.retryAfter)
		}
		w.WriteHeader(rp.status)
		_, _ = io.WriteString(w, rp.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scriptedServer) hits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func newApp(s *scriptedServer, clk clock.Clock) *spapi.AppClient {
	return &spapi.AppClient{Endpoints: map[spapi.Region]string{spapi.RegionEU: s.URL + "/"}, Clock: clk}
}

func TestRotateSendsRequest(t *testing.T) {
	t.Parallel()
	s := newScripted(t, reply{status: 204})
	clk := fakeclock.New(t0)
	log, logs := newLogger()
	obs := &recordingObserver{}
	c := newApp(s, clk)
	c.HTTP, c.Log, c.Observer = slowDoer{clk, time.Second}, log, obs

	id, err := c.RotateClientSecret(context.Background(), testClientID, spapi.RegionEU, secret.New(testToken))
	if err != nil {
		t.Fatalf("RotateClientSecret: %v", err)
	}
	if id != "req-rot" {
		t.Errorf("request id = %q", id)
	}
	r := s.seen[0]
	if r.Method != http.MethodPost || r.URL.Path != "/applications/2023-11-30/clientSecret" || s.bodies[0] != "" {
		t.Errorf("got %s %s body %q", r.Method, r.URL.Path, s.bodies[0])
	}
	if got := r.Header.Get("x-amz-access-token"); got != testToken {
		t.Errorf("x-amz-access-token = %q", got)
	}
	if got, want := obs.all(), []observation{{"spapi", "rotateClientSecret", 204, time.Second}}; !reflect.DeepEqual(got, want) {
		t.Errorf("observations = %v, want %v", got, want)
	}
	f := onlyEntry(t, logs, zapcore.DebugLevel)
	if f["request_id"] != "req-rot" || f["client_id"] != testClientID || f["status"] != int64(204) {
		t.Errorf("debug log fields = %v", f)
	}
	assertNoLeak(t, logs, testToken)
}

func TestRotateErrors(t *testing.T) {
	t.Parallel()
	notEnrolled := `{"errors":[{"code":"InvalidInput","message":"Application is not enrolled for rotation notification","details":""}]}`
	tests := []struct {
		name      string
		reply     reply
		wantKind  error
		wantCode  string
		wantRetry time.Duration
	}{
		{"400 not enrolled", reply{400, notEnrolled, ""}, spapi.ErrNotEnrolled, "InvalidInput", 0},
		{"400 other", reply{400, `{"errors":[{"code":"Other","message":"x"}]}`, ""}, spapi.ErrNotEnrolled, "Other", 0},
		{"403", reply{403, `{"errors":[{"code":"Unauthorized","message":"Access to requested resource is denied."}]}`, ""}, spapi.ErrUnauthorized, "Unauthorized", 0},
		{"404", reply{404, `{"errors":[{"code":"NotFound","message":"x"}]}`, ""}, spapi.ErrRequest, "NotFound", 0},
		{"413", reply{413, ``, ""}, spapi.ErrRequest, "", 0},
		{"415", reply{415, `not json`, ""}, spapi.ErrRequest, "", 0},
		{"429 with retry-after", reply{429, `{"errors":[{"code":"QuotaExceeded","message":"x"}]}`, "120"}, spapi.ErrThrottled, "QuotaExceeded", 120 * time.Second},
		{"429 without retry-after", reply{429, `{"errors":[]}`, ""}, spapi.ErrThrottled, "", time.Minute},
		{"500", reply{500, `{"errors":[{"code":"InternalFailure","message":"x"}]}`, ""}, spapi.ErrTransient, "InternalFailure", 0},
		{"503 html", reply{503, `<html>`, ""}, spapi.ErrTransient, "", 0},
		{"403 echoes token", reply{403, `{"errors":[{"code":"Unauthorized","message":"token ` + testToken + ` expired"}]}`, ""}, spapi.ErrUnauthorized, "Unauthorized", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newScripted(t, tc.reply)
			log, logs := newLogger()
			c := newApp(s, fakeclock.New(t0))
			c.Log = log

			id, err := c.RotateClientSecret(context.Background(), testClientID, spapi.RegionEU, secret.New(testToken))

			var e *spapi.Error
			if !errors.As(err, &e) || !errors.Is(err, tc.wantKind) {
				t.Fatalf("error %v: want an *spapi.Error of kind %v", err, tc.wantKind)
			}
			if id != "req-rot" || e.RequestID != "req-rot" || e.StatusCode != tc.reply.status || e.Code != tc.wantCode || e.RetryAfter != tc.wantRetry {
				t.Errorf("id %q, error %+v", id, e)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error string leaks the token: %q", err.Error())
			}
			if f := onlyEntry(t, logs, zapcore.WarnLevel); f["request_id"] != "req-rot" {
				t.Errorf("warn log fields = %v", f)
			}
			assertNoLeak(t, logs, testToken)
		})
	}
}

func TestRotateBadArguments(t *testing.T) {
	t.Parallel()
	s := newScripted(t, reply{status: 204})
	tests := []struct {
		name     string
		clientID string
		region   spapi.Region
		token    secret.Value
	}{
		{"unknown region", testClientID, "us", secret.New(testToken)},
		{"sandbox is no region", testClientID, "", secret.New(testToken)},
		{"no client id", "", spapi.RegionEU, secret.New(testToken)},
		{"no token", testClientID, spapi.RegionEU, secret.Value{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newApp(s, fakeclock.New(t0))
			if _, err := c.RotateClientSecret(context.Background(), tc.clientID, tc.region, tc.token); !errors.Is(err, spapi.ErrRequest) {
				t.Errorf("error %v is not ErrRequest", err)
			}
		})
	}
	if s.hits() != 0 {
		t.Errorf("server was called %d times", s.hits())
	}
}

func TestRotateNetworkError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	obs := &recordingObserver{}
	c := &spapi.AppClient{Endpoints: map[spapi.Region]string{spapi.RegionFE: srv.URL}, Observer: obs, Clock: fakeclock.New(t0)}
	id, err := c.RotateClientSecret(context.Background(), testClientID, spapi.RegionFE, secret.New(testToken))
	var e *spapi.Error
	if !errors.As(err, &e) || !errors.Is(err, spapi.ErrTransient) || e.StatusCode != 0 || id != "" {
		t.Errorf("id %q error %v: want transient with no status", id, err)
	}
	if got := obs.all(); len(got) != 1 || got[0].status != 0 {
		t.Errorf("observations = %v", got)
	}
}

func TestDefaultEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		region  spapi.Region
		want    string
		wantErr bool
	}{
		{spapi.RegionNA, "https://sellingpartnerapi-na.amazon.com", false},
		{spapi.RegionEU, "https://sellingpartnerapi-eu.amazon.com", false},
		{spapi.RegionFE, "https://sellingpartnerapi-fe.amazon.com", false},
		{"NA", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		got, err := spapi.DefaultEndpoint(tc.region)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("DefaultEndpoint(%q) = %q, %v", tc.region, got, err)
		}
	}
}

func TestRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{&spapi.Error{StatusCode: 429, Kind: spapi.ErrThrottled}, true},
		{&spapi.Error{StatusCode: 400, Kind: spapi.ErrNotEnrolled}, true},
		{&spapi.Error{StatusCode: 403, Kind: spapi.ErrUnauthorized}, true},
		{&spapi.Error{StatusCode: 404, Kind: spapi.ErrRequest}, true},
		{&spapi.Error{StatusCode: 503, Kind: spapi.ErrTransient}, false},
		{&spapi.Error{Kind: spapi.ErrTransient, Err: context.DeadlineExceeded}, false},
		{context.Canceled, false},
	}
	for _, tc := range tests {
		if got := spapi.Refused(tc.err); got != tc.want {
			t.Errorf("spapi.Refused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
