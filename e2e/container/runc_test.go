package container

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// gracePeriod is what the image promises to need after STOPSIGNAL: the daemon drains for at most
// 30 s (docs: give the container more, e.g. ECS stopTimeout, terminationGracePeriodSeconds).
const gracePeriod = 30 * time.Second

// Stamps the test passes to scripts/build.sh, read back from the running container.
const (
	testVersion  = "v0.0.0-container-test"
	testRevision = "container-test-revision"
)

// requireRoot: runc needs root here. Outside CI a developer without root may skip; in CI a skip
// would hide the one test that proves the image, so it fails.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("the runc container test needs root and CI=true: run the suite as root (see .github/workflows/ci.yml)")
	}
	t.Skip("the runc container test needs root (CI runs it as root and fails rather than skip)")
}

func TestContainerRotatesAnswersSignalsAndStopsCleanly(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatal("runc is not installed: scripts/test-all.sh installs it (apt-get install runc)")
	}
	t.Parallel()
	ctx := context.Background()
	work := t.TempDir()

	// 1. The binary, built by the one build script, as the Dockerfile does.
	binary := filepath.Join(work, "lwa-rotator")
	start := time.Now()
	build := exec.Command("bash", filepath.Join(repoRoot, "scripts/build.sh"), binary)
	build.Env = append(os.Environ(), "VERSION="+testVersion, "REVISION="+testRevision)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build.sh: %v\n%s", err, out)
	}
	t.Logf("scripts/build.sh took %s", time.Since(start).Round(time.Millisecond))
	assertStaticTrimmed(t, binary)

	// 2. The image's filesystem and process, from the Dockerfile's last stage.
	img := readImage(t)
	bundle := filepath.Join(work, "bundle")
	assembleRootfs(t, img, binary, filepath.Join(bundle, "rootfs"))

	// 3. The world on the host: moto, the simulator, a queue pair, a key and a secret.
	srv, err := moto.Start(ctx, nil)
	if err != nil {
		t.Fatalf("starting moto: %v", err)
	}
	t.Cleanup(srv.Stop)
	env, err := sandbox.NewEnv(ctx, sandbox.EnvOptions{AWSEndpoint: srv.URL, Dir: t.TempDir(),
		RotateInterval: time.Second, RetryMin: time.Second})
	if err != nil {
		t.Fatalf("creating the test world: %v", err)
	}
	t.Cleanup(func() { _ = env.Close() })

	// The daemon reads its configuration as uid 65532 through a read-only bind mount. Rewriting it
	// in place (same inode) is how the SIGHUP step changes what the container sees.
	goodConfig, err := os.ReadFile(env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	// A rotation window in a named zone: the image has no time zone database, so the daemon
	// starts only if the binary carries its own. Open all week, so the rotations below run.
	goodConfig = append(goodConfig, "\nrotationWindow:\n  timeZone: Europe/Berlin\n  open: [\"Mon-Sun 00:00-24:00\"]\n"...)
	configFile := filepath.Join(work, "config.yaml")
	if err := os.WriteFile(configFile, goodConfig, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(configFile, img.uid, img.gid); err != nil {
		t.Fatal(err)
	}
	configDest := ""
	for _, e := range img.env {
		if v, ok := strings.CutPrefix(e, "LWA_ROTATOR_CONFIG="); ok {
			configDest = v
		}
	}
	if configDest == "" {
		t.Fatal("the image sets no LWA_ROTATOR_CONFIG: where would the configuration be mounted?")
	}

	port := freePort(t)
	procEnv, err := withListenPort(img.env, port)
	if err != nil {
		t.Fatal(err)
	}
	procEnv = append(procEnv, env.Environ()...)
	if err := writeSpec(bundle, img.uid, img.gid, img.args, procEnv, configFile, configDest); err != nil {
		t.Fatal(err)
	}

	// 4. Run it. `runc run` in the foreground exits with the container's exit status, which
	// detached mode would lose.
	c := startContainer(t, bundle)
	base := "http://127.0.0.1:" + port
	c.waitFor(t, 30*time.Second, "/healthz to answer 200", func() bool { return httpStatus(base+"/healthz") == http.StatusOK })
	c.assertConfined(t, img.uid, img.gid)

	// 5. A rotation driven by an expiry notice from the simulator, through moto's SQS.
	if _, err := env.Sim.SendExpiryNotice(ctx, env.ClientID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := env.WaitRotated(ctx, 60*time.Second); err != nil {
		t.Fatalf("%v; container log:\n%s", err, c.log())
	}
	first, _, _ := env.Sim.Newest(env.ClientID)
	c.waitFor(t, 10*time.Second, "rotations_total{success} = 1", func() bool {
		return scrape(base, `lwa_rotator_rotations_total{application="demo-app",result="success"}`) == 1
	})

	// 6. SIGUSR1 through runc: a second rotation, promoted.
	c.kill(t, "USR1")
	c.waitFor(t, 60*time.Second, "a second rotation promoted", func() bool {
		cur, err := env.Store.Current(ctx, env.SecretID)
		newest, _, _ := env.Sim.Newest(env.ClientID)
		return err == nil && env.Sim.RotateCalls(env.ClientID) == 2 && !cur.Record.ClientSecret.Equal(first) &&
			cur.Record.ClientSecret.Equal(newest) && env.Sim.Valid(env.ClientID, cur.Record.ClientSecret)
	})
	c.waitFor(t, 10*time.Second, "rotations_total{success} = 2", func() bool {
		return scrape(base, `lwa_rotator_rotations_total{application="demo-app",result="success"}`) == 2
	})

	// 7. SIGHUP through runc: a broken file is refused (metric 0, daemon keeps running), the
	// repaired one is taken (metric 1).
	const reloadOK = "lwa_rotator_config_last_reload_successful"
	if v := scrape(base, reloadOK); v != 1 {
		t.Fatalf("%s = %v before any reload, want 1", reloadOK, v)
	}
	rewrite(t, configFile, append(append([]byte{}, goodConfig...), "\nnoSuchKey: 1\n"...))
	c.kill(t, "HUP")
	c.waitFor(t, 10*time.Second, reloadOK+" = 0 after a SIGHUP with a broken file", func() bool { return scrape(base, reloadOK) == 0 })
	rewrite(t, configFile, goodConfig)
	c.kill(t, "HUP")
	c.waitFor(t, 10*time.Second, reloadOK+" = 1 after a SIGHUP with the repaired file", func() bool { return scrape(base, reloadOK) == 1 })

	// 8. The image's HEALTHCHECK, run inside the container as Docker would (the image's env).
	out, code := c.exec(t, img.healthcheck...)
	if code != 0 {
		t.Errorf("HEALTHCHECK %q exited %d: %s", img.healthcheck, code, out)
	}
	if !strings.Contains(out, "127.0.0.1:"+port) {
		t.Errorf("the health check output %q does not name the address it probed", out)
	}
	out, code = c.exec(t, img.args[0], "version")
	if code != 0 || !strings.Contains(out, testVersion) || !strings.Contains(out, "revision "+testRevision) {
		t.Errorf("version inside the container (exit %d): %q; want the stamps %s, %s", code, out, testVersion, testRevision)
	}

	// 9. The STOPSIGNAL through runc: exit 0 within the grace period.
	stopped := time.Now()
	c.kill(t, strings.TrimPrefix(img.stopSignal, "SIG"))
	select {
	case err := <-c.done:
		c.done <- err
		if err != nil {
			t.Fatalf("the container exited with %v after %s, want 0; log:\n%s", err, img.stopSignal, c.log())
		}
		t.Logf("exited 0 %s after %s", time.Since(stopped).Round(time.Millisecond), img.stopSignal)
	case <-time.After(gracePeriod):
		t.Fatalf("the container did not exit within %s of %s; log:\n%s", gracePeriod, img.stopSignal, c.log())
	}
	if code := httpStatus(base + "/healthz"); code != 0 {
		t.Errorf("something still answers on the daemon's port after it exited (status %d)", code)
	}

	newest, _, _ := env.Sim.Newest(env.ClientID)
	assertNoSecret(t, c.log(), env.FirstSecret, first, newest)
}

// assertStaticTrimmed reads what the Go linker recorded: no cgo (the image has no libc), no build
// machine paths, and go.mod's Go, the toolchain the vulnerability gate judged (scripts/vulncheck.sh).
func assertStaticTrimmed(t *testing.T, binary string) {
	t.Helper()
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatalf("reading the build information of %s: %v", binary, err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
		t.Errorf("scripts/build.sh built with CGO_ENABLED=%q -trimpath=%q; want 0 and true", settings["CGO_ENABLED"], settings["-trimpath"])
	}
	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	want := ""
	for _, line := range strings.Split(string(goMod), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			want = "go" + v
		}
	}
	if want == "" || bi.GoVersion != want {
		t.Errorf("scripts/build.sh built with %s; go.mod's go line says %q", bi.GoVersion, want)
	}
}

type container struct {
	id, root string
	logPath  string
	done     chan error
}

func startContainer(t *testing.T, bundle string) *container {
	t.Helper()
	c := &container{id: "lwa-rotator-e2e-" + randHex(6), root: filepath.Join(t.TempDir(), "runc"), logPath: filepath.Join(bundle, "container.log"),
		done: make(chan error, 1)}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("runc", "--root", c.root, "run", "--bundle", bundle, c.id)
	// A file, not a pipe: the container holds it after runc hands it over, and Wait must not
	// wait for a copier goroutine.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("runc run: %v", err)
	}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = exec.CommandContext(ctx, "runc", "--root", c.root, "kill", c.id, "KILL").Run()
		select {
		case <-c.done:
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-c.done
		}
		_ = exec.CommandContext(ctx, "runc", "--root", c.root, "delete", "--force", c.id).Run()
	})
	return c
}

func (c *container) log() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

// waitFor polls cond until it holds, failing the test after limit or when the container exits.
func (c *container) waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("the container exited (%v) while waiting for %s; log:\n%s", err, what, c.log())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s; container log:\n%s", what, limit, c.log())
		}
	}
}

func (c *container) runc(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "runc", append([]string{"--root", c.root}, args...)...).CombinedOutput()
}

func (c *container) kill(t *testing.T, signal string) {
	t.Helper()
	if out, err := c.runc(t, "kill", c.id, signal); err != nil {
		t.Fatalf("runc kill %s: %v: %s", signal, err, out)
	}
}

// exec runs a command in the running container with the image's user and environment.
func (c *container) exec(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := c.runc(t, append([]string{"exec", c.id}, args...)...)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("runc exec %q: %v", args, err)
		return "", -1
	}
}

// assertConfined reads the container's process from the host: the image's uid and gid, no
// capabilities, no privilege gain, a read-only root, and the host's network namespace.
func (c *container) assertConfined(t *testing.T, uid, gid int) {
	t.Helper()
	out, err := c.runc(t, "state", c.id)
	if err != nil {
		t.Fatalf("runc state: %v: %s", err, out)
	}
	var state struct {
		Status string `json:"status"`
		Pid    int    `json:"pid"`
	}
	if err := json.Unmarshal(out, &state); err != nil || state.Status != "running" || state.Pid == 0 {
		t.Fatalf("runc state: %s (%v)", out, err)
	}
	proc := fmt.Sprintf("/proc/%d/", state.Pid)
	status := readFields(t, proc+"status")
	ids := func(n int) string { return strings.Repeat(fmt.Sprint(n)+"\t", 3) + fmt.Sprint(n) }
	want := map[string]string{
		"Uid": ids(uid), "Gid": ids(gid), "NoNewPrivs": "1",
		"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapBnd": "0000000000000000", "CapAmb": "0000000000000000",
	}
	for k, v := range want {
		if status[k] != v {
			t.Errorf("container process %s: %q, want %q", k, status[k], v)
		}
	}
	mountinfo, err := os.ReadFile(proc + "mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	rootRO := false
	for _, line := range strings.Split(string(mountinfo), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/" {
			rootRO = strings.HasPrefix(f[5], "ro,") || f[5] == "ro" // the last "/" mount is the root
		}
	}
	if !rootRO {
		t.Errorf("the container's root filesystem is not mounted read-only:\n%s", mountinfo)
	}
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	ctrNet, _ := os.Readlink(proc + "ns/net")
	hostMnt, _ := os.Readlink("/proc/self/ns/mnt")
	ctrMnt, _ := os.Readlink(proc + "ns/mnt")
	if hostNet == "" || ctrNet != hostNet || ctrMnt == hostMnt {
		t.Errorf("namespaces: net %s (host %s), mnt %s (host %s); want the host's network and an own mount namespace", ctrNet, hostNet, ctrMnt, hostMnt)
	}
}

func readFields(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// rewrite replaces the file's content in place: a bind mount follows the inode, not the name.
func rewrite(t *testing.T, path string, content []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// freePort is a port nothing listens on at the moment, on every address (the image listens on
// the wildcard address and shares the host's network).
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// httpStatus is the status of a GET, or 0 when nothing answered.
func httpStatus(url string) int {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// scrape returns the value of series on /metrics, or -1 when it cannot be read.
func scrape(base, series string) float64 {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range bytes.Split(body, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(series+" ")); ok {
			var v float64
			if _, err := fmt.Sscan(string(rest), &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// assertNoSecret: no secret value, nor its random tail, in the container's output.
func assertNoSecret(t *testing.T, output string, secrets ...secret.Value) {
	t.Helper()
	if strings.TrimSpace(output) == "" {
		t.Fatal("the container wrote no output: the leak check would prove nothing")
	}
	for _, s := range secrets {
		if s.IsZero() {
			continue
		}
		v := s.Reveal()
		tail := v[strings.LastIndex(v, ".")+1:]
		if strings.Contains(output, v) || (len(tail) >= 16 && strings.Contains(output, tail)) {
			t.Errorf("a secret value appears in the container's output")
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
