package spapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Token is an LWA access token for the rotation scope.
type Token struct {
	AccessToken secret.Value
	ExpiresIn   time.Duration
	Scope       string
}

// LWAClient runs the grantless client_credentials grant. Every field is optional: nil HTTP is
// an *http.Client with a 30s timeout, empty Endpoint is DefaultLWAEndpoint, nil Log discards,
// nil Clock is the wall clock, nil Observer observes nothing.
type LWAClient struct {
	HTTP     Doer
	Endpoint string
	Log      *zap.Logger
	Clock    clock.Clock
	Observer Observer
}

// Token runs the client_credentials grant for Scope. There is deliberately no cache: a fresh
// token is the proof that clientSecret works, which is how the rotator verifies a new secret.
func (c *LWAClient) Token(ctx context.Context, clientID string, clientSecret secret.Value) (Token, error) {
	t := newTransport(c.HTTP, c.Clock, c.Observer, c.Log)
	if clientID == "" || clientSecret.IsZero() {
		return Token{}, &Error{API: apiLWA, Op: opToken, Kind: ErrRequest, Message: "client id and client secret are required"}
	}
	endpoint := c.Endpoint
	if endpoint == "" {
		endpoint = DefaultLWAEndpoint
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"scope":         {Scope},
		"client_id":     {clientID},
		"client_secret": {clientSecret.Reveal()},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, &Error{API: apiLWA, Op: opToken, Kind: ErrRequest, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	req.Header.Set("Accept", "application/json")

	resp, d, err := t.roundTrip(apiLWA, opToken, req)
	if err != nil {
		t.logCall(apiLWA, opToken, clientID, resp.Status, resp.RequestID, d, err)
		return Token{}, err
	}
	if resp.Status < 200 || resp.Status > 299 {
		e := lwaError(resp, t.clk.Now(), clientSecret.Reveal())
		t.logCall(apiLWA, opToken, clientID, resp.Status, resp.RequestID, d, e)
		return Token{}, e
	}
	tok, err := parseToken(resp)
	t.logCall(apiLWA, opToken, clientID, resp.Status, resp.RequestID, d, err)
	if err != nil {
		return Token{}, err
	}
	return tok, nil
}

// parseToken never reports the JSON decoder's message: it could quote the token.
func parseToken(r response) (Token, error) {
	var body struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.AccessToken == "" || body.ExpiresIn <= 0 {
		return Token{}, &Error{
			API: apiLWA, Op: opToken, StatusCode: r.Status, RequestID: r.RequestID,
			Kind: ErrTransient, Message: "malformed token response",
		}
	}
	return Token{
		AccessToken: secret.New(body.AccessToken),
		ExpiresIn:   time.Duration(body.ExpiresIn) * time.Second,
		Scope:       body.Scope,
	}, nil
}

// LWAError classifies a non-2xx answer of the LWA token endpoint the way LWAClient does, for
// other clients of that endpoint (lwacreds) so both agree on every kind. header gives the
// request id and Retry-After (nil: neither); every string in hide is scrubbed from the server's
// text, which is also shortened.
func LWAError(status int, header http.Header, body []byte, now time.Time, hide ...string) *Error {
	return lwaError(response{Status: status, Header: header, Body: body, RequestID: header.Get(headerRequestID)}, now, hide...)
}
