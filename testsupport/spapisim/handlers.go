package spapisim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/amazon"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const (
	headerRequestID = "x-amzn-RequestId"
	rateLimit       = "0.0167"
	maxFormBytes    = 64 << 10
)

// Handler serves POST /auth/o2/token (LWA), POST /applications/2023-11-30/clientSecret
// (SP-API) and the /control/ API described in README.md. Every response carries an
// x-amzn-RequestId header.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/o2/token", s.handleToken)
	mux.HandleFunc("POST /applications/2023-11-30/clientSecret", s.handleRotate)
	s.controlRoutes(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(headerRequestID, s.ids.UUID())
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type lwaErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// lwaFaultBody picks the OAuth error LWA would send with an injected status.
func lwaFaultBody(status int) lwaErr {
	switch {
	case status == http.StatusUnauthorized:
		return lwaErr{"invalid_client", "Client authentication failed"}
	case status == http.StatusForbidden:
		return lwaErr{"access_denied", "Access denied"}
	case status == http.StatusServiceUnavailable:
		return lwaErr{"temporarily_unavailable", "Service temporarily unavailable"}
	case status >= 500:
		return lwaErr{"server_error", "Internal server error"}
	}
	return lwaErr{"invalid_request", "Invalid request"}
}

func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	rec := Request{Time: s.clk.Now(), Endpoint: TargetToken, RequestID: w.Header().Get(headerRequestID)}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	formErr := r.ParseForm()
	rec.ClientID = r.PostForm.Get("client_id")
	rec.Status = s.token(r.Context(), w, r, formErr)
	s.record(rec)
	s.log.Info("simulator answered token request", zap.String("client_id", rec.ClientID),
		zap.Int("status", rec.Status), zap.String("request_id", rec.RequestID))
}

func (s *Sim) token(ctx context.Context, w http.ResponseWriter, r *http.Request, formErr error) int {
	if f := s.takeFault(TargetToken); f != nil {
		if !s.wait(ctx, f.Delay) {
			return 0
		}
		if f.Status != 0 {
			writeJSON(w, f.Status, lwaFaultBody(f.Status))
			return f.Status
		}
	}
	fail := func(status int, code, desc string) int {
		writeJSON(w, status, lwaErr{code, desc})
		return status
	}
	if formErr != nil {
		return fail(http.StatusBadRequest, "invalid_request", "Malformed request body")
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		return fail(http.StatusBadRequest, "unsupported_grant_type", "The grant type is not supported")
	}
	clientID, sec := r.PostForm.Get("client_id"), secret.New(r.PostForm.Get("client_secret"))

	s.mu.Lock()
	now := s.clk.Now()
	if !s.model.Valid(now, clientID, sec) {
		s.mu.Unlock()
		return fail(http.StatusUnauthorized, "invalid_client", "Client authentication failed")
	}
	if r.PostForm.Get("scope") != spapi.Scope { // LWA checks the client before the scope
		s.mu.Unlock()
		return fail(http.StatusBadRequest, "invalid_scope", "The request has an invalid scope")
	}
	tok, err := s.model.Token(now, clientID, sec)
	s.mu.Unlock()
	if err != nil { // cannot happen: the secret was valid under the same lock
		return fail(http.StatusUnauthorized, "invalid_client", "Client authentication failed")
	}
	lifetime := tok.ExpiresAt.Sub(now)

	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok.Value, "token_type": "bearer", "expires_in": int(lifetime / time.Second), "scope": spapi.Scope,
	})
	return http.StatusOK
}

type spErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details string `json:"details"`
}

func writeSPError(w http.ResponseWriter, status int, code, msg string) int {
	writeJSON(w, status, map[string][]spErr{"errors": {{code, msg, ""}}})
	return status
}

func spFault(w http.ResponseWriter, status int) int {
	switch status {
	case http.StatusBadRequest:
		return writeSPError(w, status, "InvalidInput", "Application is not enrolled for rotation notification")
	case http.StatusForbidden:
		return writeSPError(w, status, "Unauthorized", "Access to requested resource is denied.")
	case http.StatusNotFound:
		return writeSPError(w, status, "NotFound", "The resource specified does not exist.")
	case http.StatusRequestEntityTooLarge:
		return writeSPError(w, status, "RequestEntityTooLarge", "The request size exceeded the maximum accepted size.")
	case http.StatusUnsupportedMediaType:
		return writeSPError(w, status, "UnsupportedMediaType", "The request payload is in an unsupported format.")
	case http.StatusTooManyRequests:
		return writeSPError(w, status, "QuotaExceeded", "You exceeded your quota for the requested resource.")
	case http.StatusServiceUnavailable:
		return writeSPError(w, status, "ServiceUnavailable", "Temporary overloading or maintenance of the server.")
	}
	if status >= 500 {
		return writeSPError(w, status, "InternalFailure", "An unexpected condition occurred.")
	}
	return writeSPError(w, status, "InvalidInput", "Invalid request.")
}

func (s *Sim) handleRotate(w http.ResponseWriter, r *http.Request) {
	rec := Request{Time: s.clk.Now(), Endpoint: TargetRotate, RequestID: w.Header().Get(headerRequestID)}
	w.Header().Set("x-amzn-RateLimit-Limit", rateLimit)
	rec.ClientID, rec.Status = s.rotate(r.Context(), w, r.Header.Get("x-amz-access-token"))
	s.record(rec)
	s.log.Info("simulator answered rotate request", zap.String("client_id", rec.ClientID),
		zap.Int("status", rec.Status), zap.String("request_id", rec.RequestID))
}

func (s *Sim) rotate(ctx context.Context, w http.ResponseWriter, token string) (clientID string, status int) {
	s.mu.Lock()
	owner, _ := s.model.TokenOwner(token)
	s.mu.Unlock()
	if f := s.takeFault(TargetRotate); f != nil {
		if !s.wait(ctx, f.Delay) {
			return owner, 0
		}
		if f.Status != 0 {
			return owner, spFault(w, f.Status)
		}
	}

	s.mu.Lock()
	rot, err := s.model.Rotate(s.clk.Now(), token)
	var n *pending
	if err == nil {
		n = s.newPending(rot.Notice, rot.Secret.Value.Reveal())
	}
	s.mu.Unlock()
	switch {
	case errors.Is(err, amazon.ErrUnknownToken):
		return "", writeSPError(w, http.StatusForbidden, "Unauthorized", "Access to requested resource is denied.")
	case errors.Is(err, amazon.ErrTokenExpired):
		return owner, writeSPError(w, http.StatusForbidden, "Unauthorized", "The access token you provided has expired.")
	case errors.Is(err, amazon.ErrNotEnrolled):
		return owner, writeSPError(w, http.StatusBadRequest, "InvalidInput", "Application is not enrolled for rotation notification")
	case errors.Is(err, amazon.ErrThrottled):
		return owner, writeSPError(w, http.StatusTooManyRequests, "QuotaExceeded", "You exceeded your quota for the requested resource.")
	case err != nil:
		return owner, spFault(w, http.StatusInternalServerError)
	}

	s.log.Info("simulator rotated client secret", zap.String("client_id", rot.ClientID),
		zap.String("new_secret_fingerprint", Fingerprint(rot.Secret.Value)), zap.String("notification_id", rot.Notice.NotificationID))
	// Delivered before the 204, so a caller that saw success finds the message already queued
	// unless a fault says otherwise; the client hanging up must not cancel it.
	_ = s.dispatch(context.WithoutCancel(ctx), n) // a failure is recorded on the notification
	w.WriteHeader(http.StatusNoContent)
	return rot.ClientID, http.StatusNoContent
}
