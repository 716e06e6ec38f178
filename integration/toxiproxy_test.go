package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/rs/zerolog"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

var (
	toxiOnce   sync.Once
	toxiClient *toxiclient.Client
	toxiErr    error
)

// toxi starts one in-process toxiproxy API server for the package.
func toxi(t *testing.T) *toxiclient.Client {
	t.Helper()
	toxiOnce.Do(func() {
		port, err := freePort()
		if err != nil {
			toxiErr = err
			return
		}
		srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
		go srv.Listen("127.0.0.1", strconv.Itoa(port))
		toxiClient = toxiclient.NewClient(fmt.Sprintf("127.0.0.1:%d", port))
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, toxiErr = toxiClient.Proxies(); toxiErr == nil || time.Now().After(deadline) {
				return
			}
			time.Sleep(20 * time.Millisecond) // waiting for a server we just started, not for the code under test
		}
	})
	if toxiErr != nil {
		t.Fatalf("starting toxiproxy: %v", toxiErr)
	}
	return toxiClient
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// proxied puts toxiproxy between the daemon and both moto and the simulator, and returns the
// proxies and the environment that points the daemon through them. The test world itself (the
// simulator's deliveries, the assertions) still talks to moto directly.
func proxied(t *testing.T, env *sandbox.Env) (aws, sim *toxiclient.Proxy, environ []string) {
	t.Helper()
	c := toxi(t)
	mk := func(kind, target string) *toxiclient.Proxy {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.CreateProxy(kind+"-"+t.Name(), "127.0.0.1:0", u.Host)
		if err != nil {
			t.Fatalf("creating proxy: %v", err)
		}
		t.Cleanup(func() { _ = p.Delete() })
		return p
	}
	aws, sim = mk("aws", env.AWSEndpoint), mk("sim", env.SimURL)
	return aws, sim, []string{
		"AWS_ENDPOINT_URL=http://" + aws.Listen,
		"LWA_ROTATOR_LWA_ENDPOINT=http://" + sim.Listen + "/auth/o2/token",
		"LWA_ROTATOR_SPAPI_ENDPOINT=http://" + sim.Listen,
	}
}

func addToxic(t *testing.T, p *toxiclient.Proxy, name, typ, stream string, toxicity float32, attrs toxiclient.Attributes) {
	t.Helper()
	if _, err := p.AddToxic(name, typ, stream, toxicity, attrs); err != nil {
		t.Fatalf("adding toxic %s: %v", name, err)
	}
}

// status is the HTTP status of GET addr+path, 0 when nothing answers.
func status(addr, path string) int {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func readyz(addr string) int  { return status(addr, "/readyz") }
func healthz(addr string) int { return status(addr, "/healthz") }

func toxicEnv(t *testing.T) *sandbox.Env {
	t.Helper()
	if realAWS {
		t.Skip("the toxiproxy tests put faults in front of moto; they do not run against real AWS")
	}
	return newEnv(t, sandbox.EnvOptions{VisibilityTimeout: 10 * time.Second, RetryMin: time.Second, RotateInterval: time.Second,
		AwaitDeadline: 20 * time.Second})
}

// TestSlowAndStarvedLinks: latency on every call and a bandwidth-starved link to AWS; the
// rotation still completes.
func TestSlowAndStarvedLinks(t *testing.T) {
	t.Parallel()
	env := toxicEnv(t)
	aws, sim, environ := proxied(t, env)
	addToxic(t, aws, "latency", "latency", "downstream", 1, toxiclient.Attributes{"latency": 300, "jitter": 100})
	addToxic(t, aws, "starved", "bandwidth", "downstream", 1, toxiclient.Attributes{"rate": 4}) // KB/s
	addToxic(t, sim, "latency", "latency", "upstream", 1, toxiclient.Attributes{"latency": 400, "jitter": 200})
	d := startDaemon(t, env, environ...)
	if _, err := env.Sim.SendExpiryNotice(context.Background(), env.ClientID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	assertRotated(t, env, env.FirstSecret)
	// Slow is not broken: the daemon reports ready (a poll may still be on its slow way back).
	eventually(t, 30*time.Second, "ready on a slow but working link", func() bool { return readyz(d.addr) == http.StatusOK })
}

// TestResetsAndTimeoutsFromAmazon: LWA and SP-API connections are reset or time out; the
// daemon retries with bounded backoff and finishes once the path heals.
func TestResetsAndTimeoutsFromAmazon(t *testing.T) {
	t.Parallel()
	env := toxicEnv(t)
	_, sim, environ := proxied(t, env)
	addToxic(t, sim, "reset", "reset_peer", "upstream", 1, toxiclient.Attributes{"timeout": 0})
	d := startDaemon(t, env, environ...)
	if _, err := env.Sim.SendExpiryNotice(context.Background(), env.ClientID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	failures := func() float64 {
		v, _ := d.scrape(t, `lwa_rotator_rotations_total{application="demo-app",result="request_failed"}`)
		return v
	}
	eventually(t, 30*time.Second, "a failure through the resets", func() bool { return failures() >= 1 })
	// Swap the resets for a black hole that closes the connection after a second.
	if err := sim.RemoveToxic("reset"); err != nil {
		t.Fatal(err)
	}
	addToxic(t, sim, "timeout", "timeout", "upstream", 1, toxiclient.Attributes{"timeout": 1000})
	// Attempts of one application run one after another, so at most one began before the swap:
	// the second failure counted from here went through the timeout toxic.
	before := failures()
	eventually(t, 60*time.Second, "a failure through the timeout toxic", func() bool { return failures() >= before+2 })
	if err := sim.RemoveToxic("timeout"); err != nil {
		t.Fatal(err)
	}
	assertRotated(t, env, env.FirstSecret)
	if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
		t.Errorf("rotate calls accepted = %d, want 1", n)
	}
}

// TestAWSGoneThenBack: the AWS endpoint disappears; the daemon stays alive, reports unready,
// keeps retrying, and becomes ready and rotates once the endpoint returns.
func TestAWSGoneThenBack(t *testing.T) {
	t.Parallel()
	env := toxicEnv(t)
	aws, _, environ := proxied(t, env)
	d := startDaemon(t, env, environ...)
	eventually(t, 30*time.Second, "ready", func() bool { return readyz(d.addr) == http.StatusOK })
	if err := aws.Disable(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "unready while AWS is gone", func() bool { return readyz(d.addr) == http.StatusServiceUnavailable })
	if code := healthz(d.addr); code != http.StatusOK {
		t.Fatalf("/healthz = %d while AWS is gone, want 200 (a restart would not help)", code)
	}
	// The expiry notice arrives while the daemon cannot reach SQS.
	if _, err := env.Sim.SendExpiryNotice(context.Background(), env.ClientID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Stay gone long enough for several bounded, jittered retries; the daemon keeps trying.
	eventually(t, 60*time.Second, "repeated failed polls while AWS is gone", func() bool {
		v, _ := d.scrape(t, `lwa_rotator_sqs_polls_total{queue="expiry",result="error"}`)
		return v >= 4
	})
	if code := readyz(d.addr); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d after repeated failures, want 503", code)
	}
	if err := aws.Enable(); err != nil {
		t.Fatal(err)
	}
	assertRotated(t, env, env.FirstSecret)
	eventually(t, 60*time.Second, "ready again", func() bool { return readyz(d.addr) == http.StatusOK })
}
