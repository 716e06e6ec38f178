// Package vault keeps LWA client secrets in AWS Secrets Manager using AWS's own staging protocol:
// a new value is put as AWSPENDING under a ClientRequestToken derived from the notification that
// carried it, verified by the caller, then promoted to AWSCURRENT. The daemon's rotation
// bookkeeping lives in tags on the same secret so it survives restarts and is shared by replicas.
package vault

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// Format names the JSON shape stored in the secret.
type Format string

const (
	// FormatDefault is this daemon's own shape.
	FormatDefault Format = "lwa-rotator"
	// FormatLambdaSample uses the key names of Amazon's Lambda sample, so its consumers keep working.
	FormatLambdaSample Format = "lambda-sample"
)

// ParseFormat checks a format name from configuration; the empty string means FormatDefault.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "":
		return FormatDefault, nil
	case FormatDefault, FormatLambdaSample:
		return f, nil
	}
	return "", fmt.Errorf("unknown secret format %q (want %q or %q)", s, FormatDefault, FormatLambdaSample)
}

// ErrMalformed marks a stored value that is not a record this package can read. The caller
// usually cannot fix it by retrying; an operator has to.
var ErrMalformed = errors.New("vault: malformed secret value")

// Record is what the secret stores. Its JSON is a pure function of the record (no wall-clock
// time, no random id), so a retried put is byte-identical and AWS accepts it as a no-op.
type Record struct {
	ClientID          string
	ClientSecret      secret.Value
	ExpiresAt         time.Time
	PreviousExpiresAt time.Time
}

// Same reports whether two records describe the same secret, without revealing either.
func (r Record) Same(o Record) bool {
	return r.ClientID == o.ClientID && r.ClientSecret.Equal(o.ClientSecret) && r.ExpiresAt.Equal(o.ExpiresAt) &&
		r.PreviousExpiresAt.Equal(o.PreviousExpiresAt)
}

// timeLayout is RFC 3339 with exactly three fractional digits: fixed width keeps the bytes
// stable, and milliseconds are all the notifications carry.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// Struct field order fixes the key order of the encoding, which keeps Encode deterministic.
type defaultShape struct {
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
	ExpiryTime     string `json:"clientSecretExpiryTime,omitempty"`
	PrevExpiryTime string `json:"previousClientSecretExpiryTime,omitempty"`
}

type lambdaShape struct {
	ClientID       string `json:"AppClientId"`
	ClientSecret   string `json:"AppClientSecret"`
	ExpiryTime     string `json:"clientSecretExpiryTime,omitempty"`
	PrevExpiryTime string `json:"previousClientSecretExpiryTime,omitempty"`
}

// anyShape reads both formats at once, so a user who switches formats can still read what the
// other one wrote.
type anyShape struct {
	ClientID        *string `json:"clientId"`
	ClientSecret    *string `json:"clientSecret"`
	AppClientID     *string `json:"AppClientId"`
	AppClientSecret *string `json:"AppClientSecret"`
	ExpiryTime      string  `json:"clientSecretExpiryTime"`
	PrevExpiryTime  string  `json:"previousClientSecretExpiryTime"`
}

// Encode renders r in format f. Times are written in UTC with millisecond precision (finer
// precision is truncated) and omitted when zero.
func Encode(r Record, f Format) ([]byte, error) {
	if r.ClientID == "" {
		return nil, errors.New("encoding secret record: client id is empty")
	}
	if r.ClientSecret.IsZero() {
		return nil, fmt.Errorf("encoding secret record for client %s: client secret is empty", r.ClientID)
	}
	exp, prev := formatTime(r.ExpiresAt), formatTime(r.PreviousExpiresAt)
	var v any
	switch f {
	case FormatDefault:
		v = defaultShape{r.ClientID, r.ClientSecret.Reveal(), exp, prev}
	case FormatLambdaSample:
		v = lambdaShape{r.ClientID, r.ClientSecret.Reveal(), exp, prev}
	default:
		return nil, fmt.Errorf("encoding secret record for client %s: unknown format %q", r.ClientID, f)
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Marshalling plain strings cannot fail, and the error could quote the secret if it did.
		return nil, fmt.Errorf("encoding secret record for client %s: json failed", r.ClientID)
	}
	return b, nil
}

// Decode reads a record written in format f, falling back to the other format's key names.
// Missing expiry keys give zero times (a secret an operator seeded by hand). Errors wrap
// ErrMalformed and never quote the input.
func Decode(b []byte, f Format) (Record, error) {
	if f != FormatDefault && f != FormatLambdaSample {
		return Record{}, fmt.Errorf("decoding secret record: unknown format %q", f)
	}
	var s anyShape
	if err := json.Unmarshal(b, &s); err != nil {
		return Record{}, fmt.Errorf("decoding secret record: %w: %s", ErrMalformed, describeJSONError(err))
	}
	id, sec := s.ClientID, s.ClientSecret
	altID, altSec := s.AppClientID, s.AppClientSecret
	if f == FormatLambdaSample {
		id, sec, altID, altSec = altID, altSec, id, sec
	}
	if id == nil {
		id = altID
	}
	if sec == nil {
		sec = altSec
	}
	if id == nil || *id == "" {
		return Record{}, fmt.Errorf("decoding secret record: %w: no client id", ErrMalformed)
	}
	if sec == nil || *sec == "" {
		return Record{}, fmt.Errorf("decoding secret record for client %s: %w: no client secret", *id, ErrMalformed)
	}
	r := Record{ClientID: *id, ClientSecret: secret.New(*sec)}
	var err error
	if r.ExpiresAt, err = parseTime(s.ExpiryTime); err != nil {
		return Record{}, fmt.Errorf("decoding secret record for client %s: %w: clientSecretExpiryTime is not an RFC 3339 time", *id, ErrMalformed)
	}
	if r.PreviousExpiresAt, err = parseTime(s.PrevExpiryTime); err != nil {
		return Record{}, fmt.Errorf("decoding secret record for client %s: %w: previousClientSecretExpiryTime is not an RFC 3339 time", *id, ErrMalformed)
	}
	return r, nil
}

// describeJSONError keeps the position and field of a JSON error but drops its text, which can
// quote a character of the secret.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong JSON type (%s)", typ.Field, typ.Value)
	}
	return "invalid JSON"
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// tokenDomain keeps our tokens apart from hashes of the same id made for any other purpose.
const tokenDomain = "lwa-rotator/vault/v1:"

// TokenFor derives the ClientRequestToken (and so the version id) for the secret carried by a
// notification: the same notification always maps to the same version, which makes a
// redelivered message a no-op. The result is 64 lowercase hex characters, inside the 32..64
// characters AWS allows.
func TokenFor(notificationID string) string {
	sum := sha256.Sum256([]byte(tokenDomain + notificationID))
	return hex.EncodeToString(sum[:])
}

// StagedByDaemon reports whether a version id has TokenFor's shape: staged by some replica of
// this daemon from a notification, not put by hand or by the console's rotation (whose ids are
// UUIDs).
func StagedByDaemon(versionID string) bool {
	if len(versionID) != 64 {
		return false
	}
	for _, c := range versionID {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
