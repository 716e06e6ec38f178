package prometheus_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a child process in its own process group, so ending it also ends whatever it started.
type proc struct {
	name   string
	cmd    *exec.Cmd
	out    *lines
	errLog string
	done   chan struct{} // closed once Wait returned; err is set before
	err    error
}

// startProc runs bin with args; stdout goes to an in-memory line log the test can wait on, stderr
// to a file that is printed if the test fails.
func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	errLog, err := os.CreateTemp(t.TempDir(), name+"-*.stderr")
	if err != nil {
		t.Fatalf("creating the %s log: %v", name, err)
	}
	p := &proc{name: name, out: newLines(), errLog: errLog.Name(), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = errLog
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 5 * time.Second // a grandchild holding stdout must not block Wait forever
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		errLog.Close()
		p.out.close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() {
			b, _ := os.ReadFile(p.errLog)
			t.Logf("%s stdout:\n%s\n%s stderr (last 4 KiB):\n%s", name, p.out.String(), name, tail(b, 4096))
		}
	})
	return p
}

// stop sends SIGTERM, waits up to grace, then kills the whole process group. It returns Wait's error.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Whatever the leader left behind in its group goes too.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	return p.err
}

// lines collects a process's stdout and wakes waiters on every new line.
type lines struct {
	mu      sync.Mutex
	partial []byte
	all     []string
	closed  bool
	changed chan struct{}
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (l *lines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.all = append(l.all, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	l.wake()
	return len(b), nil
}

func (l *lines) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.wake()
}

func (l *lines) wake() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

var errOutputClosed = errors.New("output closed")

// wait returns the first line that satisfies match, blocking on new output, not on a timer.
func (l *lines) wait(ctx context.Context, match func(string) bool) (string, error) {
	seen := 0
	for {
		l.mu.Lock()
		for ; seen < len(l.all); seen++ {
			if match(l.all[seen]) {
				s := l.all[seen]
				l.mu.Unlock()
				return s, nil
			}
		}
		closed, changed := l.closed, l.changed
		l.mu.Unlock()
		if closed {
			return "", errOutputClosed
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-changed:
		}
	}
}

// freeAddr reserves a loopback port long enough to learn its number.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// requireBinary fails (never skips): the monitoring deliverables are untested without it.
func requireBinary(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%v): run `apt-get update && apt-get install -y prometheus` (Debian's package ships prometheus and promtool)", path, err)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
