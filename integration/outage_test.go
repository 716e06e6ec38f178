package integration

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
)

// faultProxy forwards HTTP to a target and, while down, answers the requests match selects with
// the service's own 5xx error: an outage of one API, or of one operation of it.
type faultProxy struct {
	srv   *httptest.Server
	down  atomic.Bool
	match func(*http.Request) bool
	hits  atomic.Int64 // requests answered with the outage
}

func newFaultProxy(t *testing.T, target string, match func(*http.Request) bool, status int, body string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{match: match}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() && p.match(r) {
			p.hits.Add(1)
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// outageFor is how long each outage lasts: 40 s in CI; LWA_ROTATOR_TEST_OUTAGE (a Go duration)
// runs the issue's 30 minutes by hand (`LWA_ROTATOR_TEST_OUTAGE=30m go test ./integration -run
// TestOutagesNeverDeadLetterAGenuineSecret -parallel 3 -timeout 60m`; the three run side by side).
var outageFor = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("LWA_ROTATOR_TEST_OUTAGE")); err == nil && d > 0 {
		return d
	}
	return 40 * time.Second
}()

func awsOperation(ops ...string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		target := r.Header.Get("X-Amz-Target")
		for _, op := range ops {
			if strings.HasSuffix(target, "."+op) {
				return true
			}
		}
		return len(ops) == 0
	}
}

// TestOutagesNeverDeadLetterAGenuineSecret, on the real binary with maxReceiveCount 3 and a 5 s
// visibility timeout: Secrets Manager down while the new secret is staged, and LWA or Secrets
// Manager's promotion down while it is verified, each until the daemon failed four attempts and
// at least 40 s passed (before this, the secret was dead-lettered after 31 s; the 30-minute versions
// run on the fake clock in rotator's TestThirtyMinuteOutagesNeverLoseTheSecret). Each ends with the
// secret promoted soon after recovery, one rotate call, nothing in the dead-letter queue and no
// message left in any queue.
func TestOutagesNeverDeadLetterAGenuineSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		lwa  bool     // the outage is LWA's token endpoint; else Secrets Manager's
		ops  []string // the Secrets Manager operations down (none: all)
		hits int64    // requests answered with the outage before it ends: four of the daemon's attempts
	}{
		{"Secrets Manager down while staging", false, nil, 12},
		{"LWA down while verifying", true, nil, 4},
		{"Secrets Manager down while promoting", false, []string{"UpdateSecretVersionStage"}, 12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Secrets Manager's outage is a proxy in front of moto; real AWS cannot be taken down.
			// LWA's is the simulator's, so that one runs against real AWS too.
			if realAWS && !tc.lwa {
				t.Skip("a Secrets Manager outage is injected in front of moto; it cannot be injected into real AWS")
			}
			env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour, MaxReceiveCount: 3,
				VisibilityTimeout: 5 * time.Second, AwaitDeadline: 10 * time.Minute, DeadLetterInterval: time.Second})
			lwa := newFaultProxy(t, env.SimURL, func(r *http.Request) bool { return r.URL.Path == "/auth/o2/token" },
				http.StatusServiceUnavailable, `{"error":"temporarily_unavailable","error_description":"injected outage"}`)
			daemonEnv := []string{"LWA_ROTATOR_LWA_ENDPOINT=" + lwa.srv.URL + "/auth/o2/token"}
			var sm *faultProxy
			if !realAWS {
				sm = newFaultProxy(t, env.AWSEndpoint, awsOperation(tc.ops...), http.StatusInternalServerError,
					`{"__type":"InternalServiceError","message":"injected outage"}`)
				daemonEnv = append(daemonEnv, "AWS_ENDPOINT_URL_SECRETS_MANAGER="+sm.srv.URL)
			}
			// Amazon's delivery waits until the outage has begun, so the outage hits the secret's handling.
			env.Sim.InjectFault(spapisim.Fault{Target: spapisim.TargetDelivery, Delay: time.Hour})
			d := startDaemon(t, env, daemonEnv...)
			eventually(t, 20*time.Second, "ready", func() bool { return readyz(d.addr) == http.StatusOK })
			d.signal(t, syscall.SIGUSR1)
			eventually(t, 20*time.Second, "the rotate call", func() bool { return env.Sim.RotateCalls(env.ClientID) == 1 })

			broken := sm
			if tc.lwa {
				broken = lwa
			}
			broken.down.Store(true)
			if err := env.Sim.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The outage lasts until the daemon has failed more attempts than maxReceiveCount 3 would
			// survive if each cost an SQS receive (the SDK makes 3 tries of each AWS call), and longer
			// than the 31 s after which the message used to be dead-lettered.
			began := time.Now()
			eventually(t, outageFor+3*time.Minute, "the outage to outlast four of the daemon's attempts and "+outageFor.String(), func() bool {
				return broken.hits.Load() >= tc.hits && time.Since(began) >= outageFor
			})
			broken.down.Store(false)
			recovered := time.Now()
			t.Logf("outage of %v", recovered.Sub(began))

			// One backoff step is at most 5 min (5 s doubling), 80 s after a 40 s outage.
			if err := env.WaitRotated(context.Background(), min(outageFor, 5*time.Minute)+2*time.Minute); err != nil {
				t.Fatal(err)
			}
			assertRotated(t, env, env.FirstSecret)
			t.Logf("promoted %v after recovery; %d requests answered with the outage", time.Since(recovered), broken.hits.Load())
			if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
				t.Errorf("%d rotate calls, want 1: the outage caused a needless rotation", n)
			}
			for _, dlq := range env.DLQs {
				if n, err := env.QueueDepth(context.Background(), dlq); err != nil || n != 0 {
					t.Errorf("dead-letter queue %s holds %d messages (err %v), want none", dlq, n, err)
				}
			}
			newest, _, _ := env.Sim.Newest(env.ClientID)
			assertNoSecret(t, d.output(), env.FirstSecret, newest)
		})
	}
}
