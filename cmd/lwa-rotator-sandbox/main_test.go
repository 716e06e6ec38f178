package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestArgumentsThatAreNotFlagsAreRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "takes flags only"},
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
		{[]string{"--window-opens-in", "30s"}, "--window-opens-in must be between 1m and 24h"},
		{[]string{"--window-opens-in", "25h"}, "--window-opens-in must be between 1m and 24h"},
		{[]string{"--window-opens-in", "-1m"}, "--window-opens-in must be between 1m and 24h"},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, &stdout, &stderr)
		if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run(%q) = %v, stderr %q; want a usage error saying %q", tc.args, err, stderr.String(), tc.want)
		}
	}
}
