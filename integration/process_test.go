package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// daemonProc is one running lwa-rotator process whose JSON log lines the test can wait on.
type daemonProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	done chan error

	mu    sync.Mutex
	lines []string
	cond  *sync.Cond
}

// startDaemon runs `lwa-rotator run` against env and waits until it listens.
func startDaemon(t *testing.T, env *sandbox.Env, extraEnv ...string) *daemonProc {
	t.Helper()
	return startBinary(t, binary, env, extraEnv...)
}

// startBinary is startDaemon with another build of the binary.
func startBinary(t *testing.T, bin string, env *sandbox.Env, extraEnv ...string) *daemonProc {
	t.Helper()
	p := launchBinary(t, bin, env, extraEnv...)
	p.started(t)
	return p
}

// launchBinary starts the process without waiting for it to listen (started does), so that
// several can start side by side.
func launchBinary(t *testing.T, bin string, env *sandbox.Env, extraEnv ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", env.ConfigPath, "--listen", "127.0.0.1:0")
	cmd.Env = append(append(os.Environ(), env.Environ()...), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	p := &daemonProc{t: t, cmd: cmd, done: make(chan error, 1)}
	p.cond = sync.NewCond(&p.mu)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting lwa-rotator: %v", err)
	}
	go p.collect(stderr)
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

// started waits until the process listens, and notes its address.
func (p *daemonProc) started(t *testing.T) {
	t.Helper()
	line := p.waitLog(t, 30*time.Second, func(m map[string]any) bool { return m["msg"] == "lwa-rotator started" })
	p.addr, _ = line["listen"].(string)
}

func (p *daemonProc) collect(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		p.cond.Broadcast()
		p.mu.Unlock()
		recordOutput(sc.Text())
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	p.lines = append(p.lines, "")
	p.cond.Broadcast()
	p.mu.Unlock()
	p.done <- err
}

// waitLog blocks until a JSON log line satisfies match, or fails the test after limit.
func (p *daemonProc) waitLog(t *testing.T, limit time.Duration, match func(map[string]any) bool) map[string]any {
	t.Helper()
	timedOut := false
	timer := time.AfterFunc(limit, func() {
		p.mu.Lock()
		timedOut = true
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for seen := 0; ; p.cond.Wait() {
		for ; seen < len(p.lines); seen++ {
			var m map[string]any
			if json.Unmarshal([]byte(p.lines[seen]), &m) == nil && match(m) {
				return m
			}
		}
		if timedOut {
			t.Fatalf("no matching log line within %s; log so far:\n%s", limit, strings.Join(p.lines, "\n"))
		}
	}
}

func msgIs(msg string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["msg"] == msg }
}

func (p *daemonProc) signal(t *testing.T, s syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatalf("sending %v: %v", s, err)
	}
}

// wait returns the process's exit error, failing the test if it does not exit within limit.
func (p *daemonProc) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(limit):
		t.Fatalf("lwa-rotator did not exit within %s", limit)
		return nil
	}
}

func (p *daemonProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// scrape returns the value of the first sample whose line starts with series.
func (p *daemonProc) scrape(t *testing.T, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatalf("scraping: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range bytes.Split(body, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(series+" ")); ok {
			var v float64
			if _, err := fmt.Sscan(string(rest), &v); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}

// eventually polls cond (an external process's observable state) until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		case <-tick.C:
		}
	}
}
