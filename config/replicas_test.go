package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// holder and claimLease: defaults, the environment's name, and mistakes named by their field,
// never repeating what was typed.
func TestHolderAndClaimLease(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Holder != "" || c.ClaimLease.D() != 5*time.Minute {
		t.Errorf("defaults: holder %q, claimLease %s; want none and 5m", c.Holder, c.ClaimLease.D())
	}
	c, err = Parse([]byte(good+"claimLease: 30s\n"), env(map[string]string{"LWA_ROTATOR_HOLDER": "lwa-rotator-7d9f-x2k4p"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Holder != "lwa-rotator-7d9f-x2k4p" || c.ClaimLease.D() != 30*time.Second {
		t.Errorf("set: holder %q, claimLease %s", c.Holder, c.ClaimLease.D())
	}
	for _, tc := range []struct {
		yaml, want string
	}{
		{"holder: \"pod#SeCrEt{value}\"\n", "holder (line 16): must be 1 to 128 letters, digits and . _ - : / @ = +"},
		{"holder: " + strings.Repeat("pod-", 33) + "\n", "holder (line 16): must be 1 to 128"},
		{"claimLease: 4s\n", "claimLease (line 16): 4s must be between 5s and 1h"},
		{"claimLease: 2h\n", "claimLease (line 16): 2h0m0s must be between 5s and 1h"},
	} {
		_, err := Parse([]byte(good+tc.yaml), nil)
		var v *ValidationError
		if !errors.As(err, &v) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a problem saying %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "SeCrEt") {
			t.Errorf("%q: the problem repeats the value: %v", tc.yaml, err)
		}
	}
}
