package lwacreds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// DefaultEarlyRefresh is how long before its expiry a cached access token is replaced, so that a
// token handed out is not expired by the time SP-API reads it.
const DefaultEarlyRefresh = time.Minute

// tokenFetchTimeout bounds one shared token fetch (two LWA calls and a secret read at most);
// like the secret read it is detached from any one caller's deadline.
const tokenFetchTimeout = time.Minute

// Doer is *http.Client's Do, so tests can pass any client.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// TokenOptions configure a TokenSource. Every field is optional.
type TokenOptions struct {
	// Endpoint is the LWA token URL; empty means spapi.DefaultLWAEndpoint.
	Endpoint string
	// HTTP sends the token requests; nil means an *http.Client with a 30 s timeout.
	HTTP Doer
	// Now reads the time; nil means time.Now.
	Now func() time.Time
	// EarlyRefresh is how long before expiry a token is replaced; zero means
	// DefaultEarlyRefresh. It is capped at half the token's lifetime.
	EarlyRefresh time.Duration
}

// Token is an LWA access token, for the x-amz-access-token header of SP-API calls.
type Token struct {
	AccessToken secret.Value
	ExpiresAt   time.Time
}

// TokenSource mints and caches LWA access tokens for one grant. It is safe for concurrent use:
// callers share the cached token, and at most one token request is in flight at a time.
type TokenSource struct {
	creds    CredentialSource
	grant    grant
	endpoint string
	http     Doer
	now      func() time.Time
	early    time.Duration

	mu       sync.Mutex
	tok      Token
	tokEarly time.Duration // early refresh for tok, capped by its lifetime
	flight   *tokenFlight
}

type tokenFlight struct {
	done chan struct{}
	tok  Token
	err  error
}

// grant is the grant-specific part of the token request.
type grant struct {
	kind         string // "client_credentials" or "refresh_token"
	scope        string
	refreshToken secret.Value
}

// NewGrantlessTokenSource runs the client_credentials grant for scope, for grantless SP-API
// operations (for example "sellingpartnerapi::notifications").
func NewGrantlessTokenSource(creds CredentialSource, scope string, o TokenOptions) (*TokenSource, error) {
	if scope == "" {
		return nil, errors.New("lwacreds: making a grantless token source: scope is empty")
	}
	return newTokenSource(creds, grant{kind: "client_credentials", scope: scope}, o)
}

// NewRefreshTokenSource runs the refresh_token grant with a selling partner's refresh token, for
// the SP-API operations a seller or vendor authorized.
func NewRefreshTokenSource(creds CredentialSource, refreshToken secret.Value, o TokenOptions) (*TokenSource, error) {
	if refreshToken.IsZero() {
		return nil, errors.New("lwacreds: making a refresh-token source: refresh token is empty")
	}
	return newTokenSource(creds, grant{kind: "refresh_token", refreshToken: refreshToken}, o)
}

func newTokenSource(creds CredentialSource, g grant, o TokenOptions) (*TokenSource, error) {
	if creds == nil {
		return nil, errors.New("lwacreds: making a token source: credential source is nil")
	}
	if o.EarlyRefresh < 0 {
		return nil, errors.New("lwacreds: making a token source: early refresh is negative")
	}
	ts := &TokenSource{creds: creds, grant: g, endpoint: o.Endpoint, http: o.HTTP, now: o.Now, early: o.EarlyRefresh}
	if ts.endpoint == "" {
		ts.endpoint = spapi.DefaultLWAEndpoint
	}
	if ts.http == nil {
		ts.http = &http.Client{Timeout: 30 * time.Second}
	}
	if ts.now == nil {
		ts.now = time.Now
	}
	if ts.early == 0 {
		ts.early = DefaultEarlyRefresh
	}
	return ts, nil
}

// Token returns the cached access token, or mints a new one when it is near expiry. When LWA
// answers invalid_client, the credential source is told (which re-reads the secret at once) and
// the request is retried once with what it returns. Errors are *spapi.Error values (so
// errors.Is(err, spapi.ErrInvalidClient) works) or wrap them, and never hold a secret.
func (ts *TokenSource) Token(ctx context.Context) (Token, error) {
	ts.mu.Lock()
	if ts.validLocked(ts.now()) {
		t := ts.tok
		ts.mu.Unlock()
		return t, nil
	}
	f := ts.flight
	if f == nil {
		f = &tokenFlight{done: make(chan struct{})}
		ts.flight = f
		go ts.fetch(context.WithoutCancel(ctx), f)
	}
	ts.mu.Unlock()

	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return Token{}, fmt.Errorf("lwacreds: waiting for an LWA token: %w", ctx.Err())
	}
}

func (ts *TokenSource) validLocked(now time.Time) bool {
	return !ts.tok.AccessToken.IsZero() && now.Before(ts.tok.ExpiresAt.Add(-ts.tokEarly))
}

func (ts *TokenSource) fetch(ctx context.Context, f *tokenFlight) {
	ctx, cancel := context.WithTimeout(ctx, tokenFetchTimeout)
	defer cancel()
	defer close(f.done)

	tok, lifetime, err := ts.mint(ctx)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.flight = nil
	f.tok, f.err = tok, err
	if err == nil {
		ts.tok, ts.tokEarly = tok, min(ts.early, lifetime/2)
	}
}

// mint gets one token: with the current credentials, and once more with whatever the
// credential source offers after an invalid_client.
func (ts *TokenSource) mint(ctx context.Context) (Token, time.Duration, error) {
	c, err := ts.creds.Credentials(ctx)
	if err != nil {
		return Token{}, 0, fmt.Errorf("lwacreds: getting client credentials for an LWA token: %w", err)
	}
	tok, life, err := ts.exchange(ctx, c)
	if !errors.Is(err, spapi.ErrInvalidClient) {
		return tok, life, err
	}
	next, rerr := ts.creds.Rejected(ctx, c)
	if rerr != nil {
		return Token{}, 0, errors.Join(err, rerr)
	}
	tok, life, err = ts.exchange(ctx, next)
	if errors.Is(err, spapi.ErrInvalidClient) {
		// Not retried again, but the source learns of it, so the next Token call starts from
		// whatever is left.
		_, rerr := ts.creds.Rejected(ctx, next)
		return Token{}, 0, errors.Join(err, rerr)
	}
	return tok, life, err
}
