package integration

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// TestCrashAtEveryStep kills the real process with SIGKILL at each step of a rotation, starts a
// new one, and checks that the rotation completes exactly once with every invariant intact.
func TestCrashAtEveryStep(t *testing.T) {
	t.Parallel()
	for _, step := range rotator.Steps {
		t.Run(string(step), func(t *testing.T) {
			t.Parallel()
			// Amazon's minute between rotate calls is a second here: a crash after the intent was
			// saved leaves a call on record that may or may not have reached Amazon, and the next
			// process waits that interval out before it asks again.
			// A claim lasts 5 s: a crash right after winning it leaves the next process to take the
			// rotation over once it lapses.
			env := newEnv(t, sandbox.EnvOptions{AwaitDeadline: 5 * time.Second, VisibilityTimeout: 5 * time.Second, RetryMin: time.Second,
				RotateInterval: time.Second, ClaimLease: 5 * time.Second})
			first := startBinary(t, crashBinary, env, "LWA_ROTATOR_TEST_CRASH_AT="+string(step))
			if _, err := env.Sim.SendExpiryNotice(context.Background(), env.ClientID, time.Time{}); err != nil {
				t.Fatal(err)
			}
			first.waitLog(t, 30*time.Second, func(m map[string]any) bool {
				return m["msg"] == "test crash point reached; waiting to be killed" && m["step"] == string(step)
			})
			if err := syscall.Kill(-first.cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if err := first.wait(t, 10*time.Second); err == nil {
				t.Fatal("the killed process reported success")
			}

			second := startDaemon(t, env)
			assertRotated(t, env, env.FirstSecret)
			if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
				t.Errorf("rotate endpoint accepted %d calls across the crash, want exactly 1", n)
			}
			newest, _, _ := env.Sim.Newest(env.ClientID)
			assertNoSecret(t, first.output()+"\n"+second.output(), env.FirstSecret, newest)
		})
	}
}

// TestProductionBinaryHasNoCrashHook: the variable that freezes the crash test's build does
// nothing to the production binary, which rotates straight through every step.
func TestProductionBinaryHasNoCrashHook(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour})
	d := startDaemon(t, env, "LWA_ROTATOR_TEST_CRASH_AT="+string(rotator.StepIntentSaved))
	d.signal(t, syscall.SIGUSR1)
	assertRotated(t, env, env.FirstSecret)
}
