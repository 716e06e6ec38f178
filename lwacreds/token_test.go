package lwacreds_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/lwacreds"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const refreshToken = "Atzr|refresh-token-of-the-seller"

// rig is a Store over a fakeSM and a TokenSource over a fakeLWA, on one fake clock.
type rig struct {
	clk   *clock.Fake
	sm    *fakeSM
	lwa   *fakeLWA
	store *lwacreds.Store
	ts    *lwacreds.TokenSource
}

func newRig(t *testing.T, refresh bool) *rig {
	t.Helper()
	r := &rig{clk: clock.NewFake(t0), sm: newFakeSM(), lwa: newFakeLWA()}
	r.sm.promote(t, "v1", record("secret-one", time.Time{}), vault.FormatDefault)
	r.lwa.allow(clientID, secret.New("secret-one"))
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
			r := newRig(t, tt.refresh)
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
	s := newStore(t, newFakeSM(), clock.NewFake(t0), lwacreds.StoreOptions{})
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
			r := newRig(t, false)
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
	r := newRig(t, true)
	gate := make(chan struct{})
	r.lwa.gate = gate
	const callers = 50
	var wg sync.WaitGroup
	toks := make([]lwacreds.Token, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { toks[i], errs[i] = r.ts.Token(context.Background()) })
	}
	waitFor(t, "the token request to start", func() bool { return r.lwa.calls() == 1 })
	close(gate)
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
		rotate      bool // the daemon promoted secret-two before LWA stopped taking secret-one
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
			r := newRig(t, false)
			r.lwa.echo = true
			ctx := context.Background()
			if _, err := r.ts.Token(ctx); err != nil {
				t.Fatalf("first Token: %v", err)
			}
			if tt.rotate {
				r.sm.promote(t, "v2", record("secret-two", t0.Add(7*24*time.Hour)), vault.FormatDefault)
				r.lwa.allow(clientID, secret.New("secret-two"))
			}
			r.lwa.revoke(clientID, secret.New("secret-one"))
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
	r := newRig(t, true)
	r.lwa.echo = true
	// AWSCURRENT refused, AWSPREVIOUS alive by its record but refused too: two calls, no third.
	r.sm.promote(t, "v2", record("secret-two", t0.Add(7*24*time.Hour)), vault.FormatDefault)
	r.lwa.revoke(clientID, secret.New("secret-one"))
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
	r := newRig(t, false)
	r.lwa.status = 503
	_, err := r.ts.Token(context.Background())
	var e *spapi.Error
	if !errors.As(err, &e) || !spapi.Retryable(err) || e.StatusCode != 503 || e.Code != "server_error" {
		t.Fatalf("Token = %v, want a retryable *spapi.Error with HTTP 503 server_error", err)
	}
	if n := r.sm.readCount(vault.StageCurrent); n != 1 {
		t.Errorf("AWSCURRENT reads = %d, want 1: a server error is not a reason to re-read the secret", n)
	}
}

func TestTokenWaiterHonoursItsContext(t *testing.T) {
	t.Parallel()
	r := newRig(t, false)
	gate := make(chan struct{})
	r.lwa.gate = gate
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
	close(gate)
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
