package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is one started process under measurement (the daemon or the naive baseline).
type Proc struct {
	Kind  string // "daemon" or "naive"
	Addr  string // HOST:PORT of its listener
	cmd   *exec.Cmd
	Start time.Time
	done  chan struct{}
}

// startProc runs bin with args and env; its listener is on a port chosen here, so readiness
// can be polled from the first millisecond. Output goes to logs.
func startProc(kind, bin string, args, env []string, logs io.Writer) (*Proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, append(args, "--listen", addr)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Proc{Kind: kind, Addr: addr, cmd: cmd, done: make(chan struct{})}
	p.Start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", kind, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends s to the process.
func (p *Proc) Signal(s syscall.Signal) error { return p.cmd.Process.Signal(s) }

// Stop ends the process (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (p *Proc) Stop() {
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// get fetches http://addr+path and returns the status and body (0 when nothing answers).
func get(addr, path string) (int, []byte) {
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitFor polls cond with a growing interval (5 ms plus 2% of the time waited, so a slow start
// is not slowed further by the polling) until it holds or limit passes; it returns when it held.
func waitFor(ctx context.Context, limit time.Duration, cond func() bool) (time.Time, error) {
	start := time.Now()
	for {
		if cond() {
			return time.Now(), nil
		}
		waited := time.Since(start)
		if waited > limit {
			return time.Time{}, fmt.Errorf("condition not met within %s", limit)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(5*time.Millisecond + waited/50):
		}
	}
}

// CPU is the process's CPU time so far: the sum of its threads' run time from
// /proc/PID/task/*/schedstat (nanosecond resolution), which utime+stime in /proc/PID/stat
// (10 ms ticks) would round away over an idle minute.
func (p *Proc) CPU() (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", p.Pid()))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("listing the threads of %d: %v", p.Pid(), err)
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that ended between the listing and the read
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			sum += n
		}
	}
	return time.Duration(sum), nil
}

// TicksCPU is utime+stime from /proc/PID/stat, kept as a cross-check of CPU.
func (p *Proc) TicksCPU() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("reading the stat of %d: %w", p.Pid(), err)
	}
	// The command name may hold spaces; fields count from after its closing parenthesis.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat line of %d", p.Pid())
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond, nil // USER_HZ is 100 on Linux
}

// RSS is VmRSS from /proc/PID/status, in MiB.
func (p *Proc) RSS() (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("reading the status of %d: %w", p.Pid(), err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", p.Pid())
}

var readySeries = regexp.MustCompile(`(?m)^lwa_rotator_application_ready\{[^}]*\} (\S+)$`)

// allAppsReady reports whether /metrics shows n lwa_rotator_application_ready series, all at 1.
func allAppsReady(addr string, n int) bool {
	code, body := get(addr, "/metrics")
	if code != http.StatusOK {
		return false
	}
	m := readySeries.FindAllSubmatch(body, -1)
	if len(m) < n {
		return false
	}
	for _, s := range m {
		if string(s[1]) != "1" {
			return false
		}
	}
	return true
}

var apiSeries = regexp.MustCompile(`(?m)^lwa_rotator_api_requests_total\{api="([^"]+)",code="[^"]*",operation="([^"]+)"\} (\S+)$`)

// daemonCounts is the daemon's own lwa_rotator_api_requests_total, summed by api and operation.
func daemonCounts(addr string) map[string]int {
	_, body := get(addr, "/metrics")
	out := map[string]int{}
	for _, m := range apiSeries.FindAllSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(string(m[3]), 64)
		out[string(m[1])+" "+string(m[2])] += int(v)
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
