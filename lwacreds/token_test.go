package lwacreds_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/lwacreds"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const refreshToken = "Atzr|refresh-token-of-the-seller"

// rig is a Store over the shared Secrets Manager model and a TokenSource over the shared LWA
// simulator, on one fake clock.
type rig struct {
	clk   *fakeclock.Fake
	sm    *countingSM
	sim   *spapisim.Sim
	lwa   *lwaDoer
	store *lwacreds.Store
	ts    *lwacreds.TokenSource
}

// newRig stores secret-one as v1 and registers it with Amazon, where it dies at secretOneDies
// (zero: 180 days after t0).
func newRig(t *testing.T, refresh bool, secretOneDies time.Time) *rig {
	t.Helper()
	r := &rig{clk: fakeclock.New(t0), sm: newSM(t)}
	r.sim = spapisim.New(spapisim.Options{Clock: r.clk, IDs: &lwaIDs{}})
	t.Cleanup(r.sim.Close)
	if err := r.sim.Register(spapisim.App{
		ClientID: clientID, Secret: secret.New("secret-one"), SecretExpiresAt: secretOneDies,
		NewSecretQueueURL: "http://sqs.invalid/000000000000/new-secret", // enrolled, so it can rotate; deliveries fail, unread here
	}); err != nil {
		t.Fatalf("registering the application: %v", err)
	}
	r.lwa = &lwaDoer{h: r.sim.Handler()}
	r.sm.promote(t, v1, record("secret-one", time.Time{}), vault.FormatDefault)
	r.store = newStore(t, r.sm, r.clk, lwacreds.StoreOptions{})
	o := lwacreds.TokenOptions{HTTP: r.lwa, Now: r.clk.Now, Endpoint: "https://lwa.test/auth/o2/token"}
	var err error
	if refresh {
		r.ts, err = lwacreds.NewRefreshTokenSource(r.store, secret.New(refreshToken), o)
	} else {
		r.ts, err = lwacreds.NewGrantlessTokenSource(r.store, "sellingpartnerapi::notifications", o)
	}
	if err != nil {
		t.Fatalf("making the token source: %v", err)
	}
	return r
}

// rotateAtAmazon makes the simulator rotate the client secret, as the daemon does, without
// going through the Doer the consumer's calls are counted on: Amazon mints secret-two, and
// secret-one dies at the earlier of its expiry and seven days from now.
func (r *rig) rotateAtAmazon(t *testing.T) {
	t.Helper()
	h := r.sim.Handler()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {spapi.Scope}, "client_id": {clientID}, "client_secret": {"secret-one"}}
	req := httptest.NewRequest(http.MethodPost, "/auth/o2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("token for the rotation: HTTP %d, %v", rec.Code, err)
	}
	req = httptest.NewRequest(http.MethodPost, "/applications/2023-11-30/clientSecret", nil)
	req.Header.Set("x-amz-access-token", tok.AccessToken)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent {
		t.Fatalf("rotate: HTTP %d", rec.Code)
	}
	if fresh, _, _ := r.sim.Newest(clientID); fresh.Reveal() != "secret-two" {
		t.Fatalf("the simulator minted %s, want the second secret", fp(fresh.Reveal()))
	}
}

// holdTokenRequest makes the simulator hold the next token request until releaseTokenRequest.
func (r *rig) holdTokenRequest() {
	r.sim.InjectFault(spapisim.Fault{Target: spapisim.TargetToken, Delay: time.Millisecond})
}

// releaseTokenRequest lets the held request go on, once it is waiting on the simulator's clock.
func (r *rig) releaseTokenRequest(t *testing.T) {
	t.Helper()
	waitFor(t, "the token request to wait at LWA", func() bool { return r.clk.Pending() == 1 })
	r.clk.Advance(time.Millisecond)
}

func TestTokenSourceSendsTheGrant(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		refresh bool
		want    map[string]string
	}{
		{"grantless", false, map[string]string{
			"grant_type": "client_credentials", "scope": "sellingpartnerapi::notifications",
			"client_id": clientID, "client_secret": "secret-one", "refresh_token": "",
		}},
		{"refresh token", true, map[string]string{
			"grant_type": "refresh_token", "refresh_token": refreshToken, "scope": "",
			"client_id": clientID, "client_secret": "secret-one",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, tt.refresh, time.Time{})
			tok, err := r.ts.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tok.AccessToken.Reveal() != "Atza|token-1" || !tok.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("Token = %s expiring %v, want token-1 expiring in an hour", tok.AccessToken.Reveal(), tok.ExpiresAt)
			}
			form := r.lwa.form(0)
			for k, v := range tt.want {
				if got := form.Get(k); got != v {
					t.Errorf("form %s = %q, want %q", k, got, v)
				}
			}
			assertNoSecret(t, []string{"secret-one", refreshToken, "Atza|token-1"}, fmt.Sprintf("%v %+v %#v", tok, tok, tok))
		})
	}
}

func TestNewTokenSourceRefusesBadOptions(t *testing.T) {
	t.Parallel()
	s := newStore(t, newSM(t), fakeclock.New(t0), lwacreds.StoreOptions{})
	tests := []struct {
		name string
		make func() error
		want string
	}{
		{"no scope", func() error { _, err := lwacreds.NewGrantlessTokenSource(s, "", lwacreds.TokenOptions{}); return err }, "scope is empty"},
		{"no refresh token", func() error {
			_, err := lwacreds.NewRefreshTokenSource(s, secret.Value{}, lwacreds.TokenOptions{})
			return err
		}, "refresh token is empty"},
		{"no credentials", func() error {
			_, err := lwacreds.NewGrantlessTokenSource(nil, "x", lwacreds.TokenOptions{})
			return err
		}, "credential source is nil"},
		{"negative early refresh", func() error {
			_, err := lwacreds.NewGrantlessTokenSource(s, "x", lwacreds.TokenOptions{EarlyRefresh: -time.Second})
			return err
		}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.make(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestTokenCachedUntilShortlyBeforeExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		lifetime int // seconds
		early    time.Duration
	}{
		{"an hour, default early refresh", 3600, lwacreds.DefaultEarlyRefresh},
		{"a short token caps the early refresh at half its life", 60, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, false, time.Time{})
			r.lwa.lifetime = tt.lifetime
			ctx := context.Background()
			first, err := r.ts.Token(ctx)
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			r.clk.Advance(time.Duration(tt.lifetime)*time.Second - tt.early - time.Nanosecond)
			if tok, _ := r.ts.Token(ctx); !tok.AccessToken.Equal(first.AccessToken) || r.lwa.calls() != 1 {
				t.Fatalf("just before the early refresh: %d LWA calls, want the cached token after 1", r.lwa.calls())
			}
			r.clk.Advance(time.Nanosecond)
			if tok, _ := r.ts.Token(ctx); tok.AccessToken.Equal(first.AccessToken) || r.lwa.calls() != 2 {
				t.Fatalf("at the early refresh: %d LWA calls, want a new token after 2", r.lwa.calls())
			}
		})
	}
}

func TestTokenOneRequestInFlight(t *testing.T) {
	t.Parallel()
	r := newRig(t, true, time.Time{})
	r.holdTokenRequest()
	const callers = 50
	var wg sync.WaitGroup
	toks := make([]lwacreds.Token, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { toks[i], errs[i] = r.ts.Token(context.Background()) })
	}
	r.releaseTokenRequest(t)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || toks[i].AccessToken.Reveal() != "Atza|token-1" {
			t.Errorf("caller %d: %v; want token-1", i, errs[i])
		}
	}
	if n := r.lwa.calls(); n != 1 {
		t.Errorf("LWA calls = %d, want 1", n)
	}
}

func TestTokenAfterInvalidClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		rotate      bool // Amazon minted secret-two and the daemon promoted it before secret-one died
		wantErr     bool
		wantLWA     int
		wantCurrent int // AWSCURRENT reads
	}{
		{"the secret was rotated: re-read and retried once", true, false, 2, 2},
		{"nothing new: retried never, refused", false, true, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// secret-one dies at Amazon after the first token, before the second is due.
			r := newRig(t, false, t0.Add(30*time.Minute))
			r.lwa.echo = true
			ctx := context.Background()
			if _, err := r.ts.Token(ctx); err != nil {
				t.Fatalf("first Token: %v", err)
			}
			if tt.rotate {
				r.rotateAtAmazon(t)
				r.sm.promote(t, v2, record("secret-two", t0.Add(7*24*time.Hour)), vault.FormatDefault)
			}
			// The token is due (early refresh), the cached secret is not: only invalid_client
			// can make the Store read again.
			r.clk.Advance(time.Hour - lwacreds.DefaultEarlyRefresh)
			calls := r.lwa.calls()
			tok, err := r.ts.Token(ctx)
			if tt.wantErr {
				if !errors.Is(err, spapi.ErrInvalidClient) || !errors.Is(err, lwacreds.ErrNoUsableCredentials) {
					t.Fatalf("Token = %v, want invalid_client and ErrNoUsableCredentials", err)
				}
				assertNoSecret(t, []string{"secret-one", "secret-two", refreshToken}, err.Error(), fmt.Sprintf("%+v", err))
			} else if err != nil || tok.AccessToken.IsZero() {
				t.Fatalf("Token: %v", err)
			}
			if n := r.lwa.calls() - calls; n != tt.wantLWA {
				t.Errorf("LWA calls = %d, want %d", n, tt.wantLWA)
			}
			if n := r.sm.readCount(vault.StageCurrent); n != tt.wantCurrent {
				t.Errorf("AWSCURRENT reads = %d, want %d", n, tt.wantCurrent)
			}
		})
	}
}

func TestTokenRetriesOnlyOnce(t *testing.T) {
	t.Parallel()
	// secret-one is already dead at Amazon, and secret-two never came from it.
	r := newRig(t, true, t0)
	r.lwa.echo = true
	// AWSCURRENT refused, AWSPREVIOUS alive by its record but refused too: two calls, no third.
	r.sm.promote(t, v2, record("secret-two", t0.Add(7*24*time.Hour)), vault.FormatDefault)
	_, err := r.ts.Token(context.Background())
	if !errors.Is(err, spapi.ErrInvalidClient) {
		t.Fatalf("Token = %v, want invalid_client", err)
	}
	if n := r.lwa.calls(); n != 2 {
		t.Errorf("LWA calls = %d, want 2 (current, then previous once)", n)
	}
	if r.lwa.form(0).Get("client_secret") != "secret-two" || r.lwa.form(1).Get("client_secret") != "secret-one" {
		t.Errorf("tried %s then %s, want AWSCURRENT then AWSPREVIOUS", fp(r.lwa.form(0).Get("client_secret")), fp(r.lwa.form(1).Get("client_secret")))
	}
	assertNoSecret(t, []string{"secret-one", "secret-two", refreshToken}, err.Error(), fmt.Sprintf("%+v %#v", err, err))
}

func TestTokenErrorsAreTyped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		code   string // the OAuth error LWA sends with that status
	}{
		{http.StatusServiceUnavailable, "temporarily_unavailable"},
		{http.StatusInternalServerError, "server_error"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, false, time.Time{})
			r.sim.InjectFault(spapisim.Fault{Target: spapisim.TargetToken, Status: tt.status})
			_, err := r.ts.Token(context.Background())
			var e *spapi.Error
			if !errors.As(err, &e) || !spapi.Retryable(err) || e.StatusCode != tt.status || e.Code != tt.code {
				t.Fatalf("Token = %v, want a retryable *spapi.Error with HTTP %d %s", err, tt.status, tt.code)
			}
			if n := r.sm.readCount(vault.StageCurrent); n != 1 {
				t.Errorf("AWSCURRENT reads = %d, want 1: a server error is not a reason to re-read the secret", n)
			}
		})
	}
}

func TestTokenWaiterHonoursItsContext(t *testing.T) {
	t.Parallel()
	r := newRig(t, false, time.Time{})
	r.holdTokenRequest()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.ts.Token(ctx)
		done <- err
	}()
	waitFor(t, "the token request to start", func() bool { return r.lwa.calls() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Token after cancel = %v, want context.Canceled", err)
	}
	r.releaseTokenRequest(t)
	if _, err := r.ts.Token(context.Background()); err != nil {
		t.Fatalf("next Token: %v", err)
	}
	if n := r.lwa.calls(); n != 1 {
		t.Errorf("LWA calls = %d, want 1: the shared request outlived the caller that gave up", n)
	}
}

// fp names a test secret without printing it.
func fp(s string) string {
	switch s {
	case "secret-one":
		return "the first secret"
	case "secret-two":
		return "the second secret"
	}
	return "another secret"
}
