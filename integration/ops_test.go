package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	opstatus "github.com/spapi-tools/lwa-rotator/internal/operator/status"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// opsConfig makes the daemon read rotation requests every second instead of every minute.
const opsConfig = "requestPollInterval: 1s\n"

// opResult is what one operator command printed and how it exited.
type opResult struct {
	stdout, stderr string
	code           int
}

func (r opResult) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// runOp runs `lwa-rotator args...` against env with stdin, and records its output for the
// suite's leak scan.
func runOp(t *testing.T, env *sandbox.Env, stdin string, args ...string) opResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append(args[:1:1], append([]string{"--config", env.ConfigPath}, args[1:]...)...)...)
	cmd.Env = append(os.Environ(), env.Environ()...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := opResult{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running %v: %v", args, err)
	}
	for _, line := range strings.Split(r.stdout+"\n"+r.stderr, "\n") {
		recordOutput(line)
	}
	return r
}

// statusJSON runs `status --json` and decodes it.
func statusJSON(t *testing.T, env *sandbox.Env, wantCode int) opstatus.Report {
	t.Helper()
	r := runOp(t, env, "", "status", "--json")
	if r.code != wantCode {
		t.Fatalf("status --json: want exit %d\n%s", wantCode, r)
	}
	var rep opstatus.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, r)
	}
	return rep
}

func appReport(t *testing.T, rep opstatus.Report, name string) opstatus.AppReport {
	t.Helper()
	for _, a := range rep.Applications {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("status has no application %s: %+v", name, rep)
	return opstatus.AppReport{}
}

func stampOf(tm time.Time) string {
	if tm.IsZero() {
		return ""
	}
	return tm.UTC().Format(time.RFC3339Nano)
}

// assertStatusMatchesVault compares the status line with what the vault holds right now.
func assertStatusMatchesVault(t *testing.T, env *sandbox.Env, step string, a opstatus.AppReport) {
	t.Helper()
	ctx := context.Background()
	cur, err := env.Store.Current(ctx, env.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := env.Store.LoadState(ctx, env.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	pend, pending, err := env.Store.Pending(ctx, env.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	minted := ""
	if !cur.Record.ExpiresAt.IsZero() {
		minted = stampOf(cur.Record.ExpiresAt.Add(-180 * 24 * time.Hour)) // Amazon's secrets live 180 days
	}
	checks := []struct{ field, got, want string }{
		{"currentVersionId", a.CurrentVersionID, cur.ID},
		{"currentExpiresAt", a.CurrentExpiresAt, stampOf(rotator.EffectiveExpiry(cur.Record, st))},
		{"currentMintedAt", a.CurrentMintedAt, minted},
		{"nextRotationAt", a.NextRotationAt, a.NextActionAt},
		{"previousExpiresAt", a.PreviousExpiresAt, stampOf(cur.Record.PreviousExpiresAt)},
		{"inFlightSince", a.InFlightSince, stampOf(st.RequestedAt)},
		{"lastCallAt", a.LastCallAt, stampOf(st.LastCallAt)},
		{"requestedAt", a.RequestedAt, stampOf(st.Request.At)},
	}
	if pending {
		checks = append(checks, struct{ field, got, want string }{"pendingVersionId", a.PendingVersionID, pend.ID})
	} else {
		checks = append(checks, struct{ field, got, want string }{"pendingVersionId", a.PendingVersionID, ""})
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: status %s = %q, vault says %q", step, c.field, c.got, c.want)
		}
	}
	if a.InFlight != !st.RequestedAt.IsZero() || a.RequestPending != rotator.RequestPending(st) || a.Attempts != st.Attempts {
		t.Errorf("%s: status inFlight %v requestPending %v attempts %d; vault state %+v", step, a.InFlight, a.RequestPending, a.Attempts, st)
	}
}

// assertDecision checks the daemon's decision status reports: its phase and reason.
func assertDecision(t *testing.T, step string, a opstatus.AppReport, phase, reason string) {
	t.Helper()
	if a.Phase != phase || a.Reason != reason {
		t.Errorf("%s: status phase %q reason %q, want %q %q", step, a.Phase, a.Reason, phase, reason)
	}
}

// freezeAt starts a daemon that stops at step, waits for it there, and kills it.
func freezeAt(t *testing.T, env *sandbox.Env, step string, during func()) string {
	t.Helper()
	d := startBinary(t, crashBinary, env, "LWA_ROTATOR_TEST_CRASH_AT="+step)
	d.waitLog(t, 30*time.Second, func(m map[string]any) bool {
		return m["msg"] == "test crash point reached; waiting to be killed" && m["step"] == step
	})
	during()
	if err := syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = d.wait(t, 10*time.Second)
	return d.output()
}

// TestStatusFollowsARequestedRotation checks `status --json` against the vault at each step of
// a rotation asked for with `rotate --app`: before, requested, rotate call accepted (the daemon
// killed before it removed the request), new secret pending, promoted. The kills also prove a
// requested rotation survives crashes without a second rotate call.
func TestStatusFollowsARequestedRotation(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour, ExtraConfig: opsConfig,
		AwaitDeadline: time.Minute, VisibilityTimeout: 5 * time.Second})
	var logs []string

	rep := statusJSON(t, env, 0)
	a := appReport(t, rep, env.AppName)
	assertStatusMatchesVault(t, env, "before", a)
	if !a.Readable || a.InFlight || a.RequestPending || a.Attention || a.StoredExpiresAt != stampOf(env.Applications[0].FirstExpiry) {
		t.Fatalf("before: %+v", a)
	}
	assertDecision(t, "before", a, "idle", "renewal-scheduled")
	// Nothing in the way: the daemon acts at the renewal time.
	if want := stampOf(env.Applications[0].FirstExpiry.Add(-30 * 24 * time.Hour)); a.NextActionAt != want {
		t.Errorf("before: nextActionAt %s, want expiry − renewBefore %s", a.NextActionAt, want)
	}

	r := runOp(t, env, "", "rotate", "--app", env.AppName, "--reason", "integration test", "--json")
	var requested struct {
		Application, SecretID, RequestedAt, CurrentVersionID string
		PickupWithinSeconds                                  int
		Phase, Reason, NextActionAt                          string
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &requested) != nil || requested.Application != env.AppName ||
		requested.RequestedAt == "" || requested.PickupWithinSeconds < 1 {
		t.Fatalf("rotate --json: %s", r)
	}
	// The daemon's decision once it reads the request: rotate now.
	if requested.Phase != "due" || requested.Reason != "operator-request" || requested.NextActionAt != requested.RequestedAt {
		t.Errorf("rotate --json: phase %q reason %q nextActionAt %q; want due, operator-request, the request's time %s",
			requested.Phase, requested.Reason, requested.NextActionAt, requested.RequestedAt)
	}
	if cur, err := env.Store.Current(context.Background(), env.SecretID); err != nil || requested.CurrentVersionID != cur.ID {
		t.Fatalf("rotate --json names AWSCURRENT %q, the vault %q (%v)", requested.CurrentVersionID, cur.ID, err)
	}
	a = appReport(t, statusJSON(t, env, 0), env.AppName)
	assertStatusMatchesVault(t, env, "requested", a)
	if !a.RequestPending || a.RequestReason != "integration test" || a.RequestedBy == "" || a.InFlight {
		t.Fatalf("requested: %+v", a)
	}
	assertDecision(t, "requested", a, "due", "operator-request")
	if r := runOp(t, env, "", "rotate", "--app", env.AppName); r.code != 1 || !strings.Contains(r.stderr, "already requested") {
		t.Fatalf("a second request while one waits: want exit 1 saying so\n%s", r)
	}

	logs = append(logs, freezeAt(t, env, string(rotator.StepRotateCalled), func() {
		a = appReport(t, statusJSON(t, env, 0), env.AppName)
		assertStatusMatchesVault(t, env, "rotate call accepted", a)
		if !a.InFlight || a.RequestPending {
			t.Errorf("rotate call accepted: want in flight and the request served: %+v", a)
		}
		assertDecision(t, "rotate call accepted", a, "requested", "awaiting-secret")
		if r := runOp(t, env, "", "rotate", "--app", env.AppName); r.code != 1 || !strings.Contains(r.stderr, "already in flight") {
			t.Errorf("a request while a rotation is in flight: want exit 1 saying so\n%s", r)
		}
	}))
	logs = append(logs, freezeAt(t, env, string(rotator.StepStaged), func() {
		a = appReport(t, statusJSON(t, env, 0), env.AppName)
		assertStatusMatchesVault(t, env, "pending", a)
		if a.PendingVersionID == "" || !a.InFlight || a.RequestPending {
			t.Errorf("pending: want a pending version, in flight: %+v", a)
		}
		assertDecision(t, "pending", a, "pending", "new-secret-staged")
		if r := runOp(t, env, "", "rotate", "--app", env.AppName); r.code != 1 || !strings.Contains(r.stderr, "staged as AWSPENDING") ||
			!strings.Contains(r.stderr, "phase pending") {
			t.Errorf("a request while a new secret is staged: want exit 1 naming the phase\n%s", r)
		}
	}))
	d := startDaemon(t, env)
	assertRotated(t, env, env.FirstSecret)
	eventually(t, 10*time.Second, "the served request's tags to be removed", func() bool {
		st, err := env.Store.LoadState(context.Background(), env.SecretID)
		return err == nil && st.Request == (vault.RotationRequest{}) && st.ServedRequest.IsZero() && st.RequestedAt.IsZero()
	})
	a = appReport(t, statusJSON(t, env, 0), env.AppName)
	assertStatusMatchesVault(t, env, "promoted", a)
	if a.InFlight || a.RequestPending || a.PendingVersionID != "" || a.PreviousExpiresAt == "" {
		t.Errorf("promoted: %+v", a)
	}
	assertDecision(t, "promoted", a, "idle", "renewal-scheduled")
	if cur, err := env.Store.Current(context.Background(), env.SecretID); err != nil || a.NextActionAt != stampOf(cur.Record.ExpiresAt.Add(-30*24*time.Hour)) {
		t.Errorf("promoted: nextActionAt %s, want the new secret's expiry − renewBefore (%v)", a.NextActionAt, err)
	}
	if n := env.Sim.RotateCalls(env.ClientID); n != 1 {
		t.Errorf("rotate endpoint accepted %d calls for one request across two crashes, want 1", n)
	}
	table := runOp(t, env, "", "status")
	if table.code != 0 || !strings.Contains(table.stdout, env.AppName) || !strings.Contains(table.stdout, "renewal-scheduled") {
		t.Errorf("status table: %s", table)
	}
	newest, _, _ := env.Sim.Newest(env.ClientID)
	assertNoSecret(t, strings.Join(append(logs, d.output(), opOutput()), "\n"), env.FirstSecret, newest)
}

// TestRotateOneOfTwoApplications: `rotate --app` with a running daemon rotates that application
// and no other; --wait prints the new version id.
func TestRotateOneOfTwoApplications(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{Apps: 2, SecretLifetimeLeft: 150 * 24 * time.Hour, ExtraConfig: opsConfig})
	one, two := env.Applications[0], env.Applications[1]
	d := startDaemon(t, env)
	r := runOp(t, env, "", "rotate", "--app", two.Name, "--wait", "--timeout", "60s")
	if r.code != 0 {
		t.Fatalf("rotate --wait: %s", r)
	}
	ctx := context.Background()
	cur2, err := env.Store.Current(ctx, two.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stdout, "AWSCURRENT is now version "+cur2.ID) {
		t.Errorf("rotate --wait does not print the new version id %s:\n%s", cur2.ID, r)
	}
	if !strings.Contains(r.stdout, "phase due (operator-request)") {
		t.Errorf("rotate does not print what the daemon will do:\n%s", r)
	}
	newest, _, _ := env.Sim.Newest(two.ClientID)
	if !cur2.Record.ClientSecret.Equal(newest) || cur2.Record.ClientSecret.Equal(two.FirstSecret) {
		t.Errorf("%s was not rotated to Amazon's newest secret", two.Name)
	}
	cur1, err := env.Store.Current(ctx, one.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	if !cur1.Record.ClientSecret.Equal(one.FirstSecret) || env.Sim.RotateCalls(one.ClientID) != 0 {
		t.Errorf("%s was rotated too (rotate calls %d)", one.Name, env.Sim.RotateCalls(one.ClientID))
	}
	if n := env.Sim.RotateCalls(two.ClientID); n != 1 {
		t.Errorf("%s: %d rotate calls, want 1", two.Name, n)
	}
	if r := runOp(t, env, "", "rotate", "--app", "no-such-app"); r.code != 2 || !strings.Contains(r.stderr, "no application") {
		t.Errorf("an unknown application: %s", r)
	}
	assertNoSecret(t, d.output()+"\n"+opOutput(), one.FirstSecret, two.FirstSecret, newest)
}

// TestSeedThenRun: seed stores the first secret in a secret that does not exist yet (created
// with the configured key), refuses bad input without echoing it, and `run` then completes a
// rotation from it.
func TestSeedThenRun(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{SkipSecret: true, ExtraConfig: opsConfig})
	app := env.Applications[0]
	ctx := context.Background()

	if a := appReport(t, statusJSON(t, env, 1), app.Name); a.Readable || !a.Attention || a.Phase != "unknown" {
		t.Fatalf("status of a missing secret: %+v", a)
	}
	wrong := secret.New("amzn1.oa2-cs.v1.ffffffffffffffffffffffffffffffffffffffff")
	for _, tc := range []struct{ in, want string }{
		{"not-a-secret-at-all-0123456789\n", "does not start with amzn1.oa2-cs.v1."},
		{app.ClientID + "\n", "client id"},
		{wrong.Reveal() + "\n", "LWA rejects this client id and secret"},
	} {
		r := runOp(t, env, tc.in, "seed", "--app", app.Name)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("seed of bad input: want exit 1 saying %q\n%s", tc.want, r)
		}
		if strings.Contains(r.stdout+r.stderr, strings.TrimSpace(tc.in)[10:]) {
			t.Errorf("seed repeated its input:\n%s", r)
		}
	}
	if _, err := env.Store.Describe(ctx, app.SecretID); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("refused seeds created the secret: %v", err)
	}
	if r := runOp(t, env, "", "seed", "--app", app.Name, app.FirstSecret.Reveal()); r.code != 2 {
		t.Errorf("a secret on the command line must be refused: %s", r)
	}

	r := runOp(t, env, app.FirstSecret.Reveal()+"\n", "seed", "--app", app.Name, "--expires-at", app.FirstExpiry.Format(time.RFC3339Nano))
	if r.code != 0 || !strings.Contains(r.stdout, "created secret") {
		t.Fatalf("seed: %s", r)
	}
	// 20 days left, inside renewBefore: the daemon rotates as soon as it runs.
	if !strings.Contains(r.stdout, "phase due (renewal-due)") || !strings.Contains(r.stdout, "the daemon acts at") {
		t.Errorf("seed does not print the daemon's decision:\n%s", r)
	}
	info, err := env.Store.Describe(ctx, app.SecretID)
	if err != nil || info.KMSKeyID != env.KMSKeyARN {
		t.Fatalf("the seeded secret's key is %q (err %v), want %s", info.KMSKeyID, err, env.KMSKeyARN)
	}
	cur, err := env.Store.Current(ctx, app.SecretID)
	if err != nil || !cur.Record.ClientSecret.Equal(app.FirstSecret) || cur.Record.ClientID != app.ClientID || !cur.Record.ExpiresAt.Equal(app.FirstExpiry) {
		t.Fatalf("AWSCURRENT after seed: %+v (err %v)", cur.Record.ExpiresAt, err)
	}
	var seeded struct{ Application, Outcome, SecretARN, VersionID, Phase, Reason, NextActionAt string }
	if r := runOp(t, env, app.FirstSecret.Reveal(), "seed", "--app", app.Name, "--json"); r.code != 0 ||
		json.Unmarshal([]byte(r.stdout), &seeded) != nil || seeded.Outcome != "unchanged" || seeded.VersionID == "" ||
		seeded.Phase != "due" || seeded.Reason != "renewal-due" || seeded.NextActionAt == "" {
		t.Fatalf("seed --json of the stored secret: want outcome unchanged, phase due, reason renewal-due\n%s", r)
	}
	if r := runOp(t, env, app.FirstSecret.Reveal(), "seed", "--app", app.Name); r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
		t.Errorf("seeding the same secret again: %s", r)
	}

	d := startDaemon(t, env) // 20 days left, inside renewBefore: the daemon rotates at once
	assertRotated(t, env, app.FirstSecret)
	// The old secret still works (grace period), but so does the new current: not without --force.
	if r := runOp(t, env, app.FirstSecret.Reveal()+"\n", "seed", "--app", app.Name); r.code != 1 || !strings.Contains(r.stderr, "still mints an LWA token") {
		t.Errorf("seed over a working secret: want exit 1 and the reason\n%s", r)
	}
	newest, _, _ := env.Sim.Newest(app.ClientID)
	if cur, _ := env.Store.Current(ctx, app.SecretID); !cur.Record.ClientSecret.Equal(newest) {
		t.Error("a refused seed changed AWSCURRENT")
	}
	assertNoSecret(t, d.output()+"\n"+opOutput(), app.FirstSecret, newest, wrong)
}

// opOutput is every line the suite's commands and daemons printed so far.
func opOutput() string {
	allOutput.mu.Lock()
	defer allOutput.mu.Unlock()
	return strings.Join(allOutput.lines, "\n")
}
