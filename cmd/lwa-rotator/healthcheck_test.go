package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// server starts a /healthz answering status and returns its port.
func server(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if status == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", status)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return port
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	up, down, redirect, closed := server(t, http.StatusOK), server(t, http.StatusServiceUnavailable), server(t, http.StatusFound), closedPort(t)
	missing := filepath.Join(t.TempDir(), "absent.yaml")
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		healthy bool
		// tried is the address the output must name.
		tried string
	}{
		{"--listen, no config file (ECS)", []string{"--config", missing, "--listen", "127.0.0.1:" + up}, nil, true, "127.0.0.1:" + up},
		{"wildcard IPv4 means loopback", []string{"--config", missing, "--listen", "0.0.0.0:" + up}, nil, true, "127.0.0.1:" + up},
		{"empty host means loopback", []string{"--config", missing, "--listen", ":" + up}, nil, true, "127.0.0.1:" + up},
		{"environment, no config file", []string{"--config", missing}, map[string]string{"LWA_ROTATOR_LISTEN": "0.0.0.0:" + up}, true, "127.0.0.1:" + up},
		{"config file's listen", []string{"--config", writeConfig(t, "listen: 0.0.0.0:"+up+"\nlogLevel: info\n")}, nil, true, "127.0.0.1:" + up},
		{"LWA_ROTATOR_CONFIG names the file", nil, map[string]string{"LWA_ROTATOR_CONFIG": writeConfig(t, "listen: 127.0.0.1:"+up+"\n")}, true, "127.0.0.1:" + up},
		{"environment beats the file", []string{"--config", writeConfig(t, "listen: 127.0.0.1:"+closed+"\n")}, map[string]string{"LWA_ROTATOR_LISTEN": "127.0.0.1:" + up}, true, "127.0.0.1:" + up},
		{"--listen beats the environment", []string{"--listen", "127.0.0.1:" + up}, map[string]string{"LWA_ROTATOR_LISTEN": "127.0.0.1:" + closed}, true, "127.0.0.1:" + up},
		{"--url", []string{"--config", missing, "--url", "http://127.0.0.1:" + up + "/healthz"}, nil, true, "127.0.0.1:" + up},
		{"503", []string{"--config", missing, "--listen", "127.0.0.1:" + down}, nil, false, "127.0.0.1:" + down},
		{"a redirect is not healthy", []string{"--config", missing, "--listen", "127.0.0.1:" + redirect}, nil, false, "127.0.0.1:" + redirect},
		{"closed port", []string{"--config", missing, "--listen", "127.0.0.1:" + closed}, nil, false, "127.0.0.1:" + closed},
		{"nothing says where, no config file", []string{"--config", missing}, nil, false, missing},
		{"bad flag exits 1, not Docker's reserved 2", []string{"--no-such-flag"}, nil, false, ""},
		{"--url not http", []string{"--url", "ftp://127.0.0.1:" + up}, nil, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string { return tc.env[k] }
			var stdout, stderr bytes.Buffer
			err := cmdHealthcheck(context.Background(), tc.args, getenv, &stdout, &stderr)
			if tc.healthy {
				if err != nil {
					t.Fatalf("unhealthy: %v", err)
				}
				if !strings.Contains(stdout.String(), tc.tried) {
					t.Errorf("output %q does not name %s", stdout.String(), tc.tried)
				}
				return
			}
			if err == nil {
				t.Fatalf("healthy; stdout %q", stdout.String())
			}
			if code := exitCode(err); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(err.Error(), tc.tried) {
				t.Errorf("error %q does not name %s", err, tc.tried)
			}
		})
	}
}

func TestHealthcheckThroughRunExitsZero(t *testing.T) {
	t.Parallel()
	up := server(t, http.StatusOK)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", "--config", filepath.Join(t.TempDir(), "absent.yaml"), "--listen", "127.0.0.1:" + up}, &stdout, &stderr); err != nil {
		t.Fatalf("run healthcheck: %v (stderr %q)", err, stderr.String())
	}
}

func TestHealthcheckNeverPrintsConfigValues(t *testing.T) {
	t.Parallel()
	const planted = "amzn1.oa2-cs.v1.PLANTEDVALUE"
	tests := map[string]string{
		"listen not HOST:PORT": "listen: " + planted + "\n",
		"listen not a string":  "listen: {x: " + planted + "}\n",
		"not YAML":             "listen: [" + planted + "\n",
		"secret elsewhere":     "clientSecret: " + planted + "\nlisten: 127.0.0.1:" + closedPort(t) + "\n",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := cmdHealthcheck(context.Background(), []string{"--config", writeConfig(t, body), "--timeout", "1s"},
				func(string) string { return "" }, &stdout, &stderr)
			if err == nil {
				t.Fatal("healthy against a config that points nowhere")
			}
			for _, out := range []string{err.Error(), stdout.String(), stderr.String()} {
				if strings.Contains(out, "PLANTEDVALUE") {
					t.Errorf("a configuration value was printed: %q", out)
				}
			}
		})
	}
}

func TestDialHostMapsWildcardsToLoopback(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "127.0.0.1": "127.0.0.1",
		"::1": "::1", "localhost": "localhost", "10.0.0.5": "10.0.0.5",
	} {
		if got := dialHost(in); got != want {
			t.Errorf("dialHost(%q) = %q, want %q", in, got, want)
		}
	}
	u, err := healthTarget("", "[::]:9464", "", nil)
	if err != nil || u.String() != "http://[::1]:9464/healthz" {
		t.Errorf("[::]:9464 → %v, %v; want http://[::1]:9464/healthz", u, err)
	}
}

func TestVersionPrintsTheStampedRevision(t *testing.T) {
	// Not parallel: it sets the package's stamp variable.
	old := revision
	revision = "0123abcdef"
	defer func() { revision = old }()
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "revision 0123abcdef") {
		t.Errorf("version output %q lacks the stamped revision", stdout.String())
	}
}
