package config

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration that also accepts a day suffix ("30d"), since secret lifetimes
// are spoken of in days.
type Duration time.Duration

// errNotADuration does not repeat the input, which may be anything a user pasted.
var errNotADuration = errors.New("not a duration (use Go durations such as 90m or 720h, or days such as 30d)")

// ParseDuration parses Go durations ("90m", "720h") and whole or fractional days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 || n > 100000 {
			return 0, errNotADuration
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		// time.ParseDuration quotes its input; the input may be a pasted secret.
		return 0, errNotADuration
	}
	return d, nil
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the Go form.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
