package lwacreds

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// maxTokenBody bounds a token response; LWA answers with a few hundred bytes.
const maxTokenBody = 64 << 10

// exchange runs one token request with c and returns the token and its lifetime.
func (ts *TokenSource) exchange(ctx context.Context, c Credentials) (Token, time.Duration, error) {
	if c.ClientID == "" || c.ClientSecret.IsZero() {
		return Token{}, 0, lwaErr(0, "", "", "client id and client secret are required", spapi.ErrRequest, nil)
	}
	form := url.Values{
		"grant_type":    {ts.grant.kind},
		"client_id":     {c.ClientID},
		"client_secret": {c.ClientSecret.Reveal()},
	}
	if ts.grant.kind == "refresh_token" {
		form.Set("refresh_token", ts.grant.refreshToken.Reveal())
	} else {
		form.Set("scope", ts.grant.scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, 0, lwaErr(0, "", "", "building the token request failed", spapi.ErrRequest, nil)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	req.Header.Set("Accept", "application/json")

	sent := ts.now()
	resp, err := ts.http.Do(req)
	if err != nil {
		// *url.Error names the URL and the cause, never the form body.
		return Token{}, 0, lwaErr(0, "", "", "", spapi.ErrTransient, err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	reqID := resp.Header.Get("x-amzn-RequestId")
	hide := []string{c.ClientSecret.Reveal(), ts.grant.refreshToken.Reveal()}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := spapi.LWAError(resp.StatusCode, resp.Header, body, ts.now(), hide...)
		if e.Code == "invalid_grant" {
			// The refresh-token grant's refusal (a revoked or wrong refresh token); spapi runs only
			// client_credentials and so classifies it by status alone.
			e.Kind = spapi.ErrUnauthorized
		}
		return Token{}, 0, e
	}
	if rerr != nil {
		return Token{}, 0, &spapi.Error{API: "lwa", Op: "token", StatusCode: resp.StatusCode, RequestID: reqID, Kind: spapi.ErrTransient, Err: rerr}
	}
	var ok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	// The decoder's message is never reported: it could quote the token.
	if err := json.Unmarshal(body, &ok); err != nil || ok.AccessToken == "" || ok.ExpiresIn <= 0 {
		return Token{}, 0, &spapi.Error{
			API: "lwa", Op: "token", StatusCode: resp.StatusCode, RequestID: reqID,
			Kind: spapi.ErrTransient, Message: "malformed token response",
		}
	}
	life := time.Duration(ok.ExpiresIn) * time.Second
	// Counted from when the request left, so the token is never thought younger than it is.
	return Token{AccessToken: secret.New(ok.AccessToken), ExpiresAt: sent.Add(life)}, life, nil
}

func lwaErr(status int, code, reqID, msg string, kind, cause error) *spapi.Error {
	return &spapi.Error{API: "lwa", Op: "token", StatusCode: status, Code: code, RequestID: reqID, Message: msg, Kind: kind, Err: cause}
}
