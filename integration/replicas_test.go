package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// The log lines the replica tests read once the state they wait for holds: who promoted the
// secret (a replica that finishes another's bookkeeping counts the success too, so the counter
// cannot tell), and who found the claim taken.
const (
	msgPromoted     = "new secret verified and promoted to AWSCURRENT; the old one stays as AWSPREVIOUS until it expires"
	msgClaimedByOne = "the due rotation is claimed by another replica, or too long ago to call on; waiting for the claim to be used or to lapse"
)

// replica is one of several daemons on one world, named by its holder.
type replica struct {
	name string
	*daemonProc
}

// replicaEnv is a world for several replicas: the simulator accepts every rotate call (no
// minute between them) and the daemon's own interval is a second, so that only the claim stands
// between the replicas and a second accepted call. A claim lasts 5 s (its holder calls within
// the first second), a message comes back 5 s after a replica dies holding it.
func replicaEnv(t *testing.T, o sandbox.EnvOptions) *sandbox.Env {
	t.Helper()
	o.SimRotateInterval, o.RotateInterval = -1, time.Second
	o.ClaimLease, o.VisibilityTimeout, o.RetryMin = 5*time.Second, 5*time.Second, time.Second
	if o.AwaitDeadline == 0 {
		// Long enough that the watchdog never asks again for a secret merely slow to arrive on a
		// loaded machine; the outage test sets its own.
		o.AwaitDeadline = 10 * time.Second
	}
	return newEnv(t, o)
}

// startReplicas starts replicas a, b, c... side by side, each naming itself by its letter, and
// waits until each listens. On failure each one's log is shown.
func startReplicas(t *testing.T, env *sandbox.Env, n int, extraEnv ...string) []replica {
	t.Helper()
	rs := make([]replica, n)
	for i := range rs {
		name := "replica-" + string(rune('a'+i))
		rs[i] = replica{name, launchBinary(t, binary, env, append([]string{"LWA_ROTATOR_HOLDER=" + name}, extraEnv...)...)}
	}
	for _, r := range rs {
		r.started(t)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range rs {
				t.Logf("log of %s:\n%s", r.name, r.output())
			}
		}
	})
	return rs
}

// logged returns the JSON log lines of p that match, without waiting.
func (p *daemonProc) logged(match func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(p.output(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && match(m) {
			out = append(out, m)
		}
	}
	return out
}

// saying names the replicas that logged msg, one entry per line.
func saying(rs []replica, msg string) []string {
	var names []string
	for _, r := range rs {
		for range r.logged(msgIs(msg)) {
			names = append(names, r.name)
		}
	}
	return names
}

// requestedSeries is a replica's own count of its accepted rotate calls.
const requestedSeries = `lwa_rotator_rotations_total{application="demo-app",result="requested"}`

// callersOf names the replicas whose own counter shows an accepted rotate call, one entry per
// call: the state the caller publishes before it says so.
func callersOf(t *testing.T, rs []replica) []string {
	t.Helper()
	var names []string
	for _, r := range rs {
		v, _ := r.scrape(t, requestedSeries)
		for range int(v) {
			names = append(names, r.name)
		}
	}
	return names
}

// claimsSeen says, for the test log, which holder each replica found holding the claim.
func claimsSeen(rs []replica) string {
	var b strings.Builder
	for _, r := range rs {
		for _, m := range r.logged(msgIs(msgClaimedByOne)) {
			fmt.Fprintf(&b, "%s found the claim held by %v; ", r.name, m["holder"])
		}
	}
	return b.String()
}

func allOutputOf(rs []replica) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.output() + "\n")
	}
	return b.String()
}

// waitSettled waits until each of rs reports the promoted secret (AWSCURRENT now) as current and
// its renewal, renewBefore (30 days) ahead of its expiry, as the next rotation: from then on none
// has a rotation due, so a count of rotate calls taken after it is final. A replica that would
// call again never reports that renewal: it plans its call first.
func waitSettled(t *testing.T, env *sandbox.Env, rs []replica) {
	t.Helper()
	cur, err := env.Store.Current(context.Background(), env.SecretID)
	if err != nil {
		t.Fatalf("reading AWSCURRENT: %v", err)
	}
	expiry := float64(cur.Record.ExpiresAt.UnixMilli()) / 1e3
	renewal := float64(cur.Record.ExpiresAt.Add(-30*24*time.Hour).UnixMilli()) / 1e3
	for _, r := range rs {
		eventually(t, 30*time.Second, r.name+" to report the promoted secret and its renewal", func() bool {
			e, ok1 := r.scrape(t, `lwa_rotator_secret_expiry_timestamp_seconds{application="demo-app"}`)
			n, ok2 := r.scrape(t, `lwa_rotator_next_rotation_timestamp_seconds{application="demo-app"}`)
			return ok1 && ok2 && math.Abs(e-expiry) < 1 && math.Abs(n-renewal) < 1
		})
	}
}

// TestReplicasOneDueRotationOneCall: three replicas start side by side on a secret whose renewal
// is due (it expires within renewBefore). Exactly one rotate call is accepted, and its secret is
// promoted by exactly one replica.
func TestReplicasOneDueRotationOneCall(t *testing.T) {
	t.Parallel()
	env := replicaEnv(t, sandbox.EnvOptions{})
	rs := startReplicas(t, env, 3)
	assertRotated(t, env, env.FirstSecret)
	waitSettled(t, env, rs)
	if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
		t.Errorf("rotate endpoint accepted %d calls from three replicas, want 1", n)
	}
	callers, promoters := callersOf(t, rs), saying(rs, msgPromoted)
	if len(callers) != 1 || len(promoters) != 1 {
		t.Errorf("replicas that made the call %q and that promoted %q, want one each", callers, promoters)
	}
	t.Logf("called: %v; promoted: %v; %s", callers, promoters, claimsSeen(rs))
	newest, _, _ := env.Sim.Newest(env.ClientID)
	assertNoSecret(t, allOutputOf(rs), env.FirstSecret, newest)
}

// TestReplicasCallerKilledBeforeDelivery: of three replicas, the one that made the rotate call is
// killed (SIGKILL) before Amazon's new-secret message reaches the queue (the simulator holds it
// until then). Another replica promotes the delivered secret; no second call is made.
func TestReplicasCallerKilledBeforeDelivery(t *testing.T) {
	t.Parallel()
	env := replicaEnv(t, sandbox.EnvOptions{})
	env.Sim.InjectFault(spapisim.Fault{Target: spapisim.TargetDelivery, Delay: time.Hour})
	rs := startReplicas(t, env, 3)
	eventually(t, 20*time.Second, "the rotate call", func() bool { return env.Sim.RotateCalls(env.ClientID) == 1 })
	var caller replica
	eventually(t, 10*time.Second, "a replica to count its call as accepted", func() bool {
		for _, r := range rs {
			if v, _ := r.scrape(t, requestedSeries); v == 1 {
				caller = r
				return true
			}
		}
		return false
	})
	if err := syscall.Kill(-caller.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := caller.wait(t, 10*time.Second); err == nil {
		t.Fatalf("the killed %s reported success", caller.name)
	}
	if err := env.Sim.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var survivors []replica
	for _, r := range rs {
		if r.name != caller.name {
			survivors = append(survivors, r)
		}
	}
	assertRotated(t, env, env.FirstSecret)
	waitSettled(t, env, survivors)
	if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
		t.Errorf("rotate endpoint accepted %d calls, want 1: a survivor asked again for the secret on its way", n)
	}
	callers, promoters := callersOf(t, survivors), saying(survivors, msgPromoted)
	if len(callers) != 0 || len(promoters) != 1 {
		t.Errorf("survivors that made a call %q (the killed caller: %s) and survivors that promoted %q, want none and one",
			callers, caller.name, promoters)
	}
	t.Logf("called and killed: %s; promoted: %v; %s", caller.name, promoters, claimsSeen(rs))
	newest, _, _ := env.Sim.Newest(env.ClientID)
	assertNoSecret(t, allOutputOf(rs), env.FirstSecret, newest)
}

// TestReplicasSIGUSR1ToOneReplica: the secret is far from expiry; SIGUSR1 to one of three
// replicas (b) makes that one call, once, and the rotation completes. The new secret's message
// goes to whichever replica receives it first; in the second case b is stopped (SIGSTOP) from its
// call until another replica has promoted the secret, so that another one always does.
func TestReplicasSIGUSR1ToOneReplica(t *testing.T) {
	t.Parallel()
	for _, stopCaller := range []bool{false, true} {
		name := map[bool]string{false: "any replica promotes", true: "another replica promotes"}[stopCaller]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := replicaEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour})
			if stopCaller {
				env.Sim.InjectFault(spapisim.Fault{Target: spapisim.TargetDelivery, Delay: time.Hour})
			}
			rs := startReplicas(t, env, 3)
			b := rs[1]
			b.signal(t, syscall.SIGUSR1)
			if stopCaller {
				eventually(t, 20*time.Second, b.name+" to count its call as accepted", func() bool {
					v, _ := b.scrape(t, requestedSeries)
					return v == 1
				})
				if err := syscall.Kill(-b.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				if err := env.Sim.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
				if err := env.WaitRotated(context.Background(), 30*time.Second); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Kill(-b.cmd.Process.Pid, syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
			}
			assertRotated(t, env, env.FirstSecret)
			// The others have nothing due and sleep until the renewal months away; b has finished
			// once it reports the new secret and that renewal.
			waitSettled(t, env, rs[1:2])
			if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
				t.Errorf("rotate endpoint accepted %d calls after one SIGUSR1, want 1", n)
			}
			callers, promoters := callersOf(t, rs), saying(rs, msgPromoted)
			if len(callers) != 1 || callers[0] != b.name || len(promoters) != 1 || (stopCaller && promoters[0] == b.name) {
				t.Errorf("replicas that made the call %q and that promoted %q, want %s and one other", callers, promoters, b.name)
			}
			t.Logf("called: %v; promoted: %v", callers, promoters)
			newest, _, _ := env.Sim.Newest(env.ClientID)
			assertNoSecret(t, allOutputOf(rs), env.FirstSecret, newest)
		})
	}
}

// stagingPuts selects the PutSecretValue requests that stage a secret as AWSPENDING, not the
// claims the replicas write (LWA_ROTATOR_CLAIM).
func stagingPuts(r *http.Request) bool {
	if !awsOperation("PutSecretValue")(r) {
		return false
	}
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	return err == nil && bytes.Contains(body, []byte(`"`+vault.StagePending+`"`))
}

// TestReplicasStagingOutageLongerThanAwaitDeadline: three replicas, one rotate call; from the
// moment Amazon delivers the new secret, Secrets Manager refuses to store it for longer than the
// await deadline (5 s), past which a replica without the word "secret in hand" would ask Amazon
// again. Every replica holds off, and once the outage ends the delivered secret (the simulator's
// newest) is promoted, with exactly one rotate call in all. Two outages: staging puts only (the
// replicas' claims still go through, so the claim alone does not prevent a call), and every
// PutSecretValue.
func TestReplicasStagingOutageLongerThanAwaitDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		match func(*http.Request) bool
	}{
		{"staging puts refused", stagingPuts},
		{"every PutSecretValue refused", awsOperation("PutSecretValue")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if realAWS {
				t.Skip("a Secrets Manager outage is injected in front of moto; it cannot be injected into real AWS")
			}
			const awaitDeadline = 5 * time.Second
			env := replicaEnv(t, sandbox.EnvOptions{AwaitDeadline: awaitDeadline})
			sm := newFaultProxy(t, env.AWSEndpoint, tc.match, http.StatusInternalServerError,
				`{"__type":"InternalServiceError","message":"injected outage"}`)
			env.Sim.InjectFault(spapisim.Fault{Target: spapisim.TargetDelivery, Delay: time.Hour})
			rs := startReplicas(t, env, 3, "AWS_ENDPOINT_URL_SECRETS_MANAGER="+sm.srv.URL)
			eventually(t, 20*time.Second, "the rotate call", func() bool { return env.Sim.RotateCalls(env.ClientID) == 1 })

			sm.down.Store(true)
			delivered := time.Now()
			if err := env.Sim.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The outage lasts until two staging attempts were refused, every replica has planned
			// past its await deadline and deferred to the word on the secret (its next rotation
			// then waits for the 15-minute word, not the deadline), and the deadline is 3 s gone.
			eventually(t, 45*time.Second, "two refused attempts and every replica deferring to the secret in hand", func() bool {
				if sm.hits.Load() < 4 || !inHand(t, env) || time.Since(delivered) < awaitDeadline+3*time.Second {
					return false
				}
				for _, r := range rs {
					v, ok := r.scrape(t, `lwa_rotator_next_rotation_timestamp_seconds{application="demo-app"}`)
					if !ok || v < float64(delivered.Add(10*time.Minute).Unix()) {
						return false
					}
				}
				return true
			})
			if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
				t.Fatalf("rotate endpoint accepted %d calls during the outage, want 1", n)
			}
			sm.down.Store(false)
			recovered := time.Now()
			t.Logf("outage of %s, %d requests refused", recovered.Sub(delivered).Round(time.Millisecond), sm.hits.Load())

			// A held message is tried again 5 s, then 10 s, then 20 s... after the last refusal.
			if err := env.WaitRotated(context.Background(), 60*time.Second); err != nil {
				t.Fatal(err)
			}
			assertRotated(t, env, env.FirstSecret)
			t.Logf("promoted %s after the outage; %s", time.Since(recovered).Round(time.Millisecond), claimsSeen(rs))
			if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
				t.Errorf("rotate endpoint accepted %d calls in all, want 1", n)
			}
			if promoters := saying(rs, msgPromoted); len(promoters) != 1 {
				t.Errorf("replicas that promoted: %q, want one", promoters)
			}
			newest, _, _ := env.Sim.Newest(env.ClientID)
			assertNoSecret(t, allOutputOf(rs), env.FirstSecret, newest)
		})
	}
}

// inHand reports whether the secret carries a replica's word that it holds the new secret, as
// moto holds it (read past the outage's proxy).
func inHand(t *testing.T, env *sandbox.Env) bool {
	t.Helper()
	out, err := env.AWS.SecretsManager.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(env.SecretID)})
	if err != nil {
		t.Fatalf("describing the secret: %v", err)
	}
	for _, tag := range out.Tags {
		if aws.ToString(tag.Key) == vault.TagSecretInHand && aws.ToString(tag.Value) != "" {
			return true
		}
	}
	return false
}
