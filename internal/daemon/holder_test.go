package daemon

import (
	"errors"
	"regexp"
	"testing"
)

// A replica names itself by the configured name or the host's, made tag-safe, then an id of its
// own process, so two processes under one name never share a claim.
func TestHolderNamesTheReplicaAndItsProcess(t *testing.T) {
	t.Parallel()
	host := func(name string, err error) func() (string, error) {
		return func() (string, error) { return name, err }
	}
	for _, tc := range []struct {
		configured string
		hostname   func() (string, error)
		want       string // the name before the process id
	}{
		{"", host("ip-10-0-4-168.ec2.internal", nil), "ip-10-0-4-168.ec2.internal"},
		{"lwa-rotator-7d9f-x2k4p", host("ignored", nil), "lwa-rotator-7d9f-x2k4p"},
		{"", host("my host#1", nil), "my-host-1"},
		{"", host("", errors.New("no hostname")), "lwa-rotator"},
	} {
		a, b := holder(tc.configured, tc.hostname), holder(tc.configured, tc.hostname)
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(tc.want) + `/[0-9a-f]{8}$`).MatchString(a) {
			t.Errorf("holder(%q) = %q, want %s/<8 hex>", tc.configured, a, tc.want)
		}
		if a == b {
			t.Errorf("two processes named %q share the holder %q", tc.want, a)
		}
	}
}
