package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// TestCoreDumpsDisabled: a crash must not write process memory, secrets included, to disk.
func TestCoreDumpsDisabled(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour})
	d := startDaemon(t, env)
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(limits), "\n") {
		if strings.HasPrefix(line, "Max core file size") {
			if f := strings.Fields(line); len(f) < 6 || f[4] != "0" || f[5] != "0" {
				t.Fatalf("core dumps are not disabled: %q", line)
			}
			return
		}
	}
	t.Fatal("no core file size line in /proc/PID/limits")
}

// TestConfigNeverHoldsOrPrintsASecret: a client secret pasted into the file is refused, and
// neither check-config nor run repeats it.
func TestConfigNeverHoldsOrPrintsASecret(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{})
	good, err := os.ReadFile(env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	const pasted = "amzn1.oa2-cs.v1.pastedpastedpastedpasted00000000"
	bad := strings.Replace(string(good), "    region: na\n", "    region: na\n    clientSecret: "+pasted+"\n", 1)
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check-config", "--config", path}, {"run", "--config", path}} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), env.Environ()...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("%s accepted a configuration holding a client secret", args[0])
		}
		if !strings.Contains(string(out), "clientSecret") {
			t.Errorf("%s does not say what is wrong: %s", args[0], out)
		}
		if strings.Contains(string(out), "pastedpasted") {
			t.Errorf("%s printed the pasted secret", args[0])
		}
	}
	out, err := exec.Command(binary, "check-config", "--config", env.ConfigPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration OK") {
		t.Fatalf("check-config on a good file: %v: %s", err, out)
	}
}
