package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenAddress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A file the full loader would refuse still yields its listen: the probe needs nothing else.
	invalid := write("invalid.yaml", "listen: 0.0.0.0:9999\nnoSuchKey: x\napplications: []\n")
	noListen := write("nolisten.yaml", "logLevel: debug\n")
	missing := filepath.Join(dir, "absent.yaml")
	tests := []struct {
		name, path, env, want string
		wantErr               error
	}{
		{"file's listen, rest not validated", invalid, "", "0.0.0.0:9999", nil},
		{"default when the file has none", noListen, "", DefaultListen, nil},
		{"environment wins, file not read", missing, "127.0.0.1:1", "127.0.0.1:1", nil},
		{"missing file", missing, "", "", fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ListenAddress(tc.path, func(k string) string {
				if k == "LWA_ROTATOR_LISTEN" {
					return tc.env
				}
				return ""
			})
			if got != tc.want || (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("ListenAddress = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	_, err := ListenAddress(write("typed.yaml", "listen: {host: SECRETISH}\n"), nil)
	if err == nil || strings.Contains(err.Error(), "SECRETISH") {
		t.Errorf("a listen that is not a string: err %v; want an error that does not repeat the value", err)
	}
}
