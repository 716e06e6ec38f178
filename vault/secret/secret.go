// Package secret holds the one type that carries an LWA client secret through the daemon. Every
// way Go, encoding/json or zap has of printing a value prints Redacted instead of the secret, so
// a secret can only leave the process through an explicit call to Reveal.
package secret

import (
	"encoding/json"
	"fmt"

	"go.uber.org/zap/zapcore"
)

// Redacted is what every formatter prints in place of a secret.
const Redacted = "[REDACTED]"

// Value is an LWA client secret. The zero Value is empty.
type Value struct {
	v string
}

// New wraps a plaintext secret.
func New(plaintext string) Value { return Value{v: plaintext} }

// Reveal returns the plaintext. Call it only where the secret must go on the wire or into the
// vault; never pass the result to a logger or an error.
func (s Value) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Value) IsZero() bool { return s.v == "" }

// Equal compares two secrets without revealing either to the caller.
func (s Value) Equal(o Value) bool { return s.v == o.v }

// String implements fmt.Stringer.
func (s Value) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (s Value) GoString() string { return "secret.Value{" + Redacted + "}" }

// Format covers every fmt verb, including %x and %q, which would otherwise bypass String.
func (s Value) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(Redacted))
}

// MarshalJSON writes the redaction marker, so a secret inside any JSON-encoded struct stays hidden.
func (s Value) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// MarshalText keeps encoders that prefer TextMarshaler (yaml, zap's reflection) from seeing it.
func (s Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// UnmarshalJSON reads a JSON string; notifications and the vault use it to take a secret in.
func (s *Value) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return fmt.Errorf("secret must be a JSON string: %w", errNoDetail(err))
	}
	s.v = str
	return nil
}

// MarshalLogObject makes zap.Object and zap.Any log the marker instead of the value.
func (s Value) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("value", Redacted)
	return nil
}

// errNoDetail drops the json error's text, which could quote part of the input.
func errNoDetail(err error) error {
	if err == nil {
		return nil
	}
	return errMalformed
}

var errMalformed = fmt.Errorf("malformed value")
