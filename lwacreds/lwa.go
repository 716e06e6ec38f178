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

// maxMessage keeps a server-supplied error text from flooding a log.
const maxMessage = 512

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
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e) // a body that is not JSON still gets its kind from the status
		return Token{}, 0, &spapi.Error{
			API: "lwa", Op: "token", StatusCode: resp.StatusCode, RequestID: reqID,
			Code: scrub(e.Error, hide), Message: scrub(e.Description, hide),
			Kind: lwaKind(e.Error, resp.StatusCode),
		}
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

// lwaKind follows the OAuth error code before the status: LWA answers invalid_client with 400
// as well as 401.
func lwaKind(code string, status int) error {
	switch code {
	case "invalid_client":
		return spapi.ErrInvalidClient
	case "unauthorized_client", "invalid_scope", "access_denied", "invalid_grant":
		return spapi.ErrUnauthorized
	case "server_error", "temporarily_unavailable":
		return spapi.ErrTransient
	}
	switch {
	case status == http.StatusUnauthorized:
		return spapi.ErrInvalidClient
	case status == http.StatusForbidden:
		return spapi.ErrUnauthorized
	case status == http.StatusTooManyRequests:
		return spapi.ErrThrottled
	case status >= 500:
		return spapi.ErrTransient
	}
	return spapi.ErrRequest
}

// scrub keeps a server-supplied string from carrying a secret into an error, and keeps it short.
func scrub(s string, hide []string) string {
	for _, h := range hide {
		if h != "" {
			s = strings.ReplaceAll(s, h, secret.Redacted)
		}
	}
	if len(s) > maxMessage {
		s = s[:maxMessage] + "…"
	}
	return s
}
