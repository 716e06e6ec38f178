package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spapi-tools/lwa-rotator/testsupport/configtest"
)

func TestUnknownCommandIsRepeatedOnlyWhenItLooksLikeOne(t *testing.T) {
	t.Parallel()
	tests := []struct {
		arg, want string
	}{
		{"bogus", `unknown command "bogus"`},
		{configtest.Pasted, "unknown command (not shown)"},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{tc.arg}, &stdout, &stderr)
		if !errors.Is(err, errUsage) {
			t.Errorf("run(%.8s…) = %v, want a usage error", tc.arg, err)
		}
		out := stdout.String() + stderr.String()
		if !strings.Contains(out, tc.want) || configtest.Leaks(out) {
			t.Errorf("run(%.8s…) printed %q, want %q and no secret", tc.arg, out, tc.want)
		}
	}
}
