package integration

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// stallProxy forwards TCP to a target until Stall, after which every byte in either direction,
// on new and kept-alive connections alike, is held: AWS as it looks when a link swallows packets.
// Held counts the reads it is holding, so a test can wait until the daemon is stuck in a call.
type stallProxy struct {
	ln      net.Listener
	target  string
	stalled chan struct{} // closed by Stall
	once    sync.Once
	held    atomic.Int64
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target, stalled: make(chan struct{})}
	t.Cleanup(func() { _ = ln.Close() })
	go p.serve(t)
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

func (p *stallProxy) Stall() { p.once.Do(func() { close(p.stalled) }) }

func (p *stallProxy) serve(t *testing.T) {
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		mu.Lock()
		conns = append(conns, c, up)
		mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies src to dst until either closes; once stalled, it holds what it read instead of
// writing it, until the test ends and closes the connections.
func (p *stallProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-p.stalled:
				p.held.Add(1)
				_, _ = io.Copy(io.Discard, src) // swallow everything until closed
				return
			default:
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestSIGTERMStartsTheDrainWhileAWSHangs: with every AWS call hanging (long polls, the vault read
// a SIGUSR1 started, and a SIGHUP's reload), SIGTERM still makes the daemon unready within a
// second and exit cleanly soon after: signals never wait on work.
func TestSIGTERMStartsTheDrainWhileAWSHangs(t *testing.T) {
	t.Parallel()
	if realAWS {
		t.Skip("the stall sits in front of moto")
	}
	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour})
	u, err := url.Parse(env.AWSEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	stall := newStallProxy(t, u.Host)
	d := startDaemon(t, env, "AWS_ENDPOINT_URL=http://"+stall.addr())
	eventually(t, 20*time.Second, "ready through the proxy", func() bool { return readyz(d.addr) == http.StatusOK })

	stall.Stall()
	d.signal(t, syscall.SIGUSR1) // the pass it starts hangs on DescribeSecret
	d.signal(t, syscall.SIGHUP)  // the reload too, if it reaches AWS
	// Stuck: the vault read and at least one long poll are held.
	eventually(t, 30*time.Second, "AWS calls to hang", func() bool { return stall.held.Load() >= 2 })

	sent := time.Now()
	d.signal(t, syscall.SIGTERM)
	// The drain has started when /readyz says so, or when its listener is already closed or the
	// process gone (a drain with no message in hand can finish between two looks).
	started := func() bool {
		select {
		case err := <-d.done:
			d.done <- err
			return true
		default:
		}
		code, body := readyzBody(d.addr)
		return code == 0 || (code == http.StatusServiceUnavailable && strings.Contains(body, "draining"))
	}
	for !started() {
		if time.Since(sent) > 5*time.Second {
			t.Fatal("no drain within 5s of SIGTERM")
		}
		time.Sleep(5 * time.Millisecond) // polling another process's state
	}
	if took := time.Since(sent); took > time.Second {
		t.Errorf("the drain started %v after SIGTERM, want within 1s", took)
	}
	if err := d.wait(t, 15*time.Second); err != nil {
		t.Errorf("the daemon did not exit cleanly while AWS hung: %v", err)
	}
	// A -race build sleeps a second at exit (GORACE atexit_sleep_ms): that second is not ours.
	t.Logf("exited %v after SIGTERM with %d held AWS reads", time.Since(sent), stall.held.Load())
}

// readyzBody is /readyz's status and body; 0 when nothing answers within 200ms.
func readyzBody(addr string) (int, string) {
	c := http.Client{Timeout: 200 * time.Millisecond}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
