package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/testsupport/configtest"
	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// runBinary runs the real binary to its end and returns everything it wrote and its exit error.
func runBinary(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		recordOutput(out.String())
		return out.String(), err
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("lwa-rotator %v did not finish", args)
		return "", nil
	}
}

// TestPastedSecretNeverReachesOutput puts a client secret into every field of the file and every
// environment override in turn, and runs check-config, run and a SIGHUP reload on each: the
// configuration is refused every time, and the secret appears in 0 bytes of output.
func TestPastedSecretNeverReachesOutput(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour})
	good, err := os.ReadFile(env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	base := append(os.Environ(), env.Environ()...)
	dir := t.TempDir()
	type variant struct {
		name    string
		file    string
		environ []string
	}
	var variants []variant
	for i, path := range configtest.FieldPaths() {
		raw, err := configtest.Set(good, path, configtest.Pasted)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "field-"+string(rune('a'+i%26))+path+".yaml")
		if err := os.WriteFile(file, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		variants = append(variants, variant{name: path, file: file, environ: base})
	}
	for _, e := range append(config.Env, struct{ Name, Field string }{"LWA_ROTATOR_CONFIG", "the file"}) {
		variants = append(variants, variant{name: e.Name, file: env.ConfigPath, environ: append(append([]string{}, base...), e.Name+"="+configtest.Pasted)})
	}
	if len(variants) < 30 {
		t.Fatalf("only %d variants: the field walk is broken", len(variants))
	}

	var all bytes.Buffer
	for _, v := range variants {
		for _, cmd := range [][]string{{"check-config", "--config", v.file}, {"run", "--config", v.file, "--listen", "127.0.0.1:0"}} {
			if v.name == "LWA_ROTATOR_CONFIG" {
				cmd = cmd[:1] // the path comes from the variable
				if cmd[0] == "run" {
					cmd = append(cmd, "--listen", "127.0.0.1:0")
				}
			}
			out, err := runBinary(t, v.environ, cmd...)
			all.WriteString(out)
			if err == nil {
				t.Errorf("%s with a secret in %s succeeded", cmd[0], v.name)
			}
			if configtest.Leaks(out) {
				t.Errorf("%s with a secret in %s printed it", cmd[0], v.name)
			}
		}
	}

	// SIGHUP: each bad file is refused by a running daemon, then the good one is applied again.
	d := startDaemon(t, env)
	reload := func(raw []byte, want float64, what string) {
		t.Helper()
		if err := os.WriteFile(env.ConfigPath, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		d.signal(t, syscall.SIGHUP)
		eventually(t, 10*time.Second, what, func() bool {
			v, ok := d.scrape(t, "lwa_rotator_config_last_reload_successful")
			return ok && v == want
		})
	}
	for _, v := range variants {
		if v.file == env.ConfigPath {
			continue // environment overrides are read once, at start-up: covered above
		}
		bad, err := os.ReadFile(v.file)
		if err != nil {
			t.Fatal(err)
		}
		reload(bad, 0, "a reload with a secret in "+v.name+" refused")
		reload(good, 1, "the good file applied again")
	}
	all.WriteString(d.output())
	if configtest.Leaks(all.String()) {
		t.Error("the pasted secret appears in the output")
	}
	if !bytes.Contains(all.Bytes(), []byte("looks like a client secret")) {
		t.Fatalf("no output names the pasted secret: the scan proves nothing")
	}
}
