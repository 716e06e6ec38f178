package spapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The kinds of failure callers branch on. Every error this package returns is an *Error whose
// Kind is one of these, so errors.Is(err, ErrThrottled) and friends work.
var (
	// ErrNotEnrolled: SP-API answered 400, in practice "Application is not enrolled for rotation
	// notification". A configuration problem; retrying cannot help.
	ErrNotEnrolled = errors.New("application is not enrolled for rotation notifications")
	// ErrInvalidClient: LWA does not accept the client id and secret (expired or wrong secret).
	ErrInvalidClient = errors.New("LWA rejected the client credentials")
	// ErrUnauthorized: 403, or an LWA unauthorized_client, invalid_scope or access_denied.
	ErrUnauthorized = errors.New("not authorized")
	// ErrThrottled: 429 from the server, or the local one-per-interval limit.
	ErrThrottled = errors.New("throttled")
	// ErrTransient: 5xx, network errors, timeouts, malformed success bodies. Retry with backoff.
	ErrTransient = errors.New("transient failure")
	// ErrRequest: the request itself is wrong (404, 413, 415, other 4xx, bad arguments).
	ErrRequest = errors.New("request rejected")
)

// Error describes one failed call. It never holds a secret or an access token: server messages
// are scrubbed of both before they are stored.
type Error struct {
	API        string // "lwa" or "spapi"
	Op         string // "token" or "rotateClientSecret"
	StatusCode int    // 0 when no response arrived
	Code       string // LWA "error" or SP-API errors[0].code
	Message    string // LWA "error_description" or SP-API errors[0].message
	RequestID  string // x-amzn-RequestId
	RetryAfter time.Duration
	Kind       error // one of the sentinels above
	Err        error // the underlying cause (network error, context error), if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.API + " " + e.Op)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	if e.RetryAfter > 0 {
		b.WriteString(", retry after " + e.RetryAfter.String())
	}
	if e.Kind != nil {
		b.WriteString(": " + e.Kind.Error())
	}
	return b.String()
}

// Unwrap exposes both the kind and the cause, so errors.Is works for ErrTransient and for
// context.Canceled alike.
func (e *Error) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Retryable reports whether err is worth retrying later (throttled or transient).
func Retryable(err error) bool {
	return errors.Is(err, ErrThrottled) || errors.Is(err, ErrTransient)
}

// Refused reports whether Amazon (or the local rate limit) turned the call down before acting on
// it: a 4xx answer. A 5xx or a lost connection is not a refusal, since the work may have been done.
func Refused(err error) bool {
	for _, kind := range []error{ErrNotEnrolled, ErrInvalidClient, ErrUnauthorized, ErrThrottled, ErrRequest} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

const (
	apiLWA       = "lwa"
	apiSPAPI     = "spapi"
	opToken      = "token"
	opRotate     = "rotateClientSecret"
	maxMsgLength = 512
)

func kindForStatus(api string, status int) error {
	switch {
	case status == http.StatusBadRequest && api == apiSPAPI:
		return ErrNotEnrolled
	case status == http.StatusUnauthorized && api == apiLWA:
		return ErrInvalidClient
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return ErrUnauthorized
	case status == http.StatusTooManyRequests:
		return ErrThrottled
	case status >= 500:
		return ErrTransient
	}
	return ErrRequest
}

// lwaKind lets the OAuth error code win over the status: LWA answers invalid_client with 400
// as well as 401.
func lwaKind(code string, status int) error {
	switch code {
	case "invalid_client":
		return ErrInvalidClient
	case "unauthorized_client", "invalid_scope", "access_denied":
		return ErrUnauthorized
	case "server_error", "temporarily_unavailable":
		return ErrTransient
	}
	return kindForStatus(apiLWA, status)
}

func lwaError(r response, now time.Time, hide ...string) *Error {
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(r.Body, &body) // a non-JSON body still yields an error from the status
	return &Error{
		API: apiLWA, Op: opToken, StatusCode: r.Status, RequestID: r.RequestID,
		Code:       scrub(body.Error, hide),
		Message:    scrub(body.Description, hide),
		RetryAfter: parseRetryAfter(r.Header.Get("Retry-After"), now),
		Kind:       lwaKind(body.Error, r.Status),
	}
}

func spapiError(r response, now time.Time, hide ...string) *Error {
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(r.Body, &body)
	e := &Error{
		API: apiSPAPI, Op: opRotate, StatusCode: r.Status, RequestID: r.RequestID,
		RetryAfter: parseRetryAfter(r.Header.Get("Retry-After"), now),
		Kind:       kindForStatus(apiSPAPI, r.Status),
	}
	if len(body.Errors) > 0 {
		e.Code = scrub(body.Errors[0].Code, hide)
		e.Message = scrub(body.Errors[0].Message, hide)
	}
	return e
}

// scrub keeps a server-supplied string from carrying a secret into a log or error, and keeps
// it short.
func scrub(s string, hide []string) string {
	for _, h := range hide {
		if h != "" {
			s = strings.ReplaceAll(s, h, secret.Redacted)
		}
	}
	if len(s) > maxMsgLength {
		s = s[:maxMsgLength] + "…"
	}
	return s
}

// maxRetryAfter bounds a hostile or broken header; nothing legitimate asks for more.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads delta-seconds or an HTTP date; anything else means "not given".
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
