package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// apiRequest matches one series of lwa_rotator_api_requests_total.
var apiRequest = regexp.MustCompile(`^lwa_rotator_api_requests_total\{api="([^"]+)",code="[^"]*",operation="([^"]+)"\} (\S+)$`)

// requestCounts sums the daemon's own count of outgoing requests by api/operation.
func requestCounts(t *testing.T, d *daemonProc) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + d.addr + "/metrics")
	if err != nil {
		t.Fatalf("scraping: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]int{}
	for _, line := range bytes.Split(body, []byte("\n")) {
		m := apiRequest.FindSubmatch(line)
		if m == nil {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(string(m[3]), &v); err != nil {
			t.Fatalf("series %s: %v", line, err)
		}
		out[string(m[1])+" "+string(m[2])] += int(v)
	}
	return out
}

// polling are the requests made on a timer whatever happens (long polls, DLQ depth), not by a
// rotation: they are measured by the benchmark, not budgeted here.
var polling = map[string]bool{"sqs ReceiveMessage": true, "sqs GetQueueAttributes": true}

func diff(before, after map[string]int) (map[string]int, int) {
	out, total := map[string]int{}, 0
	for k, v := range after {
		if n := v - before[k]; n != 0 && !polling[k] {
			out[k] = n
			total += n
		}
	}
	return out, total
}

func show(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	return b.String()
}

// TestRotationStaysWithinItsRequestBudget counts, with the daemon's own request counter, every
// request a whole rotation costs against moto and the simulator, and holds it to the budget of
// the snapshot-and-decide design (docs/performance.md explains each request).
func TestRotationStaysWithinItsRequestBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		lifeLeft time.Duration
		start    func(t *testing.T, env *sandbox.Env, d *daemonProc)
		// most is the budget per operation; anything not listed must not be called.
		most  map[string]int
		total int
	}{
		{
			name: "SIGUSR1", lifeLeft: 150 * 24 * time.Hour,
			start: func(t *testing.T, _ *sandbox.Env, d *daemonProc) { d.signal(t, syscall.SIGUSR1) },
			// pass: DescribeSecret, PutSecretValue (the claim), TagResource (intent), token, rotate;
			// message: DescribeSecret,
			// PutSecretValue, token, UpdateSecretVersionStage, UntagResource (state cleared),
			// DeleteMessage. The pass after the promotion plans from what it wrote: no read.
			most: map[string]int{
				"secretsmanager DescribeSecret": 2, "secretsmanager TagResource": 1, "secretsmanager PutSecretValue": 2,
				"secretsmanager UpdateSecretVersionStage": 1, "secretsmanager UntagResource": 1,
				"lwa token": 2, "spapi rotateClientSecret": 1, "sqs DeleteMessage": 1,
			},
			total: 11,
		},
		{
			name: "expiry notice", lifeLeft: 40 * 24 * time.Hour,
			start: func(t *testing.T, env *sandbox.Env, _ *daemonProc) {
				// A notice earlier than the stored expiry, inside the renewal window: Amazon's word
				// that the current secret dies sooner.
				if _, err := env.Sim.SendExpiryNotice(context.Background(), env.ClientID, time.Now().Add(20*24*time.Hour)); err != nil {
					t.Fatal(err)
				}
			},
			// notice: DescribeSecret, TagResource (noticed expiry), DeleteMessage; then the SIGUSR1
			// path above.
			most: map[string]int{
				"secretsmanager DescribeSecret": 3, "secretsmanager TagResource": 2, "secretsmanager PutSecretValue": 2,
				"secretsmanager UpdateSecretVersionStage": 1, "secretsmanager UntagResource": 1,
				"lwa token": 2, "spapi rotateClientSecret": 1, "sqs DeleteMessage": 2,
			},
			total: 14,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The request watch's DescribeSecret a minute is measured by the benchmark; keep it out.
			env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: tc.lifeLeft, ExtraConfig: "requestPollInterval: 24h\n"})
			d := startDaemon(t, env)
			eventually(t, 20*time.Second, "the first pass to read the secret", func() bool {
				v, _ := d.scrape(t, `lwa_rotator_application_ready{application="demo-app"}`)
				return v == 1
			})
			before := requestCounts(t, d)
			tc.start(t, env, d)
			assertRotated(t, env, env.FirstSecret)
			var got map[string]int
			var total int
			eventually(t, 10*time.Second, "the messages' deletes to be counted", func() bool {
				got, total = diff(before, requestCounts(t, d))
				return got["sqs DeleteMessage"] >= tc.most["sqs DeleteMessage"]
			})
			t.Logf("one rotation (%s): %d requests: %s", tc.name, total, show(got))
			for op, n := range got {
				if most, ok := tc.most[op]; !ok || n > most {
					t.Errorf("%s called %d times, budget %d", op, n, most)
				}
			}
			if total > tc.total {
				t.Errorf("%d requests in all, budget %d", total, tc.total)
			}
		})
	}
}
