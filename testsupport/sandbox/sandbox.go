package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/internal/daemon"
	"github.com/spapi-tools/lwa-rotator/internal/operator/doctor"
	"github.com/spapi-tools/lwa-rotator/internal/operator/status"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
)

// Options for the sandbox command.
type Options struct {
	Out               io.Writer
	Listen            string
	SimulatorOnly     bool
	ExitAfterRotation bool
	Signals           <-chan os.Signal
	Version           string
	// WindowOpensIn, when set, gives the sandbox a rotation window that opens this long after
	// start (EnvOptions.WindowOpensIn): the rotation due at start waits for it, then runs.
	WindowOpensIn time.Duration
}

// Run starts moto, the simulator and (unless SimulatorOnly) the daemon, performs one complete
// rotation, reports it, and keeps serving until a stop signal.
func Run(ctx context.Context, o Options) error {
	out := o.Out
	fmt.Fprintln(out, "lwa-rotator-sandbox: local AWS (moto) + SP-API/LWA simulator; no AWS account is used")
	srv, err := moto.Start(ctx, nil)
	if err != nil {
		return fmt.Errorf("starting moto: %w", err)
	}
	defer srv.Stop()
	level := zap.NewAtomicLevelAt(zap.InfoLevel)
	log := consoleLogger(level)
	dir, err := os.MkdirTemp("", "lwa-rotator-sandbox-")
	if err != nil {
		return fmt.Errorf("making the sandbox directory: %w", err)
	}
	defer os.RemoveAll(dir)
	env, err := NewEnv(ctx, EnvOptions{AWSEndpoint: srv.URL, Log: log, Name: "sandbox", Dir: dir, Canary: true, WindowOpensIn: o.WindowOpensIn})
	if err != nil {
		return err
	}
	defer env.Close()
	fmt.Fprintf(out, "  moto (SQS, Secrets Manager, KMS): %s\n  SP-API + LWA simulator:           %s (control API: %s/control/...)\n  config:                           %s\n",
		srv.URL, env.SimURL, env.SimURL, env.ConfigPath)
	if !env.WindowOpensAt.IsZero() {
		fmt.Fprintf(out, "  rotation window:                  opens at %s for %s (UTC)\n", env.WindowOpensAt.Format(time.RFC3339), WindowLength)
	}

	if o.SimulatorOnly {
		fmt.Fprintf(out, "\nPoint an independently started daemon at this world:\n\n")
		for _, kv := range env.Environ() {
			fmt.Fprintf(out, "  export %s\n", kv)
		}
		fmt.Fprintf(out, "  lwa-rotator run --config %s\n\nExpiry queue %s\nNew-secret queue %s\nApplication %s (client id %s)\nStop with Ctrl-C.\n",
			env.ConfigPath, env.ExpiryQueue, env.SecretQueue, env.AppName, env.ClientID)
		waitStop(ctx, o.Signals)
		return nil
	}

	daemonSignals := make(chan os.Signal, 8)
	listening := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{
			ConfigPath: env.ConfigPath, Getenv: func(string) string { return "" }, Listen: o.Listen,
			AWS: env.AWSConfig(), Signals: daemonSignals, Log: log, Level: &level, Version: o.Version,
			OnListen: func(a string) { listening <- a },
		})
	}()
	var addr string
	select {
	case err := <-done:
		return fmt.Errorf("daemon stopped before it listened: %w", err)
	case addr = <-listening:
	}

	start := time.Now()
	nid, err := env.Sim.SendExpiryNotice(ctx, env.ClientID, time.Time{})
	if err != nil {
		return fmt.Errorf("sending the expiry notice: %w", err)
	}
	fmt.Fprintf(out, "\n1. Amazon (simulated) sent an expiry notice %s: the secret expires in 20 days, inside renewBefore (30d)\n", nid)
	limit := 60 * time.Second
	if !env.WindowOpensAt.IsZero() {
		if err := env.PrintWindowWait(ctx, out); err != nil {
			return err
		}
		limit += env.WindowOpensAt.Sub(env.opts.Clock.Now())
	}
	if err := env.WaitRotated(ctx, limit); err != nil {
		return err
	}
	if !env.WindowOpensAt.IsZero() {
		fmt.Fprintf(out, "   the window opened at %s; the daemon called rotate at %s\n", env.WindowOpensAt.Format(time.RFC3339), firstRotateCall(env))
	}
	if err := env.Report(ctx, out, start); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n5. lwa-rotator doctor, read-only, on this set-up:\n")
	rep, err := env.Doctor(ctx)
	if err != nil {
		return err
	}
	if err := doctor.WriteText(out, rep); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n6. lwa-rotator status --config %s (read from the vault alone; --json for scripts):\n", env.ConfigPath)
	if err := env.PrintStatus(ctx, out); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nMetrics: http://%s/metrics   Health: http://%s/healthz   Ready: http://%s/readyz\n", addr, addr, addr)
	fmt.Fprintf(out, "Rotate again: kill -USR1 %d   Stop: Ctrl-C\n", os.Getpid())
	// The operator commands against this world, from another shell: its AWS and simulator
	// endpoints come from the environment lines below.
	fmt.Fprintf(out, "\nOperator commands (another shell; set these first):\n")
	for _, kv := range env.Environ() {
		fmt.Fprintf(out, "  export %s\n", kv)
	}
	fmt.Fprintf(out, "  lwa-rotator status --config %[1]s\n  lwa-rotator doctor --config %[1]s\n  lwa-rotator rotate --config %[1]s --app %[2]s --wait\n", env.ConfigPath, env.AppName)

	if o.ExitAfterRotation {
		daemonSignals <- syscall.SIGTERM
		return <-done
	}
	for {
		select {
		case err := <-done:
			return err
		case s := <-o.Signals:
			daemonSignals <- s
		}
	}
}

// Doctor runs lwa-rotator doctor's checks against this world, as the command would.
func (e *Env) Doctor(ctx context.Context) (doctor.Report, error) {
	cfg, err := config.Load(e.ConfigPath, func(string) string { return "" })
	if err != nil {
		return doctor.Report{}, fmt.Errorf("loading the sandbox configuration for doctor: %w", err)
	}
	return doctor.Run(ctx, cfg, doctor.Deps{SQS: e.AWS.SQS, KMS: e.AWS.KMS, SecretsManager: e.AWS.SecretsManager,
		LWA: &spapi.LWAClient{Endpoint: cfg.Endpoints.LWA}, Vault: e.Store, Apps: daemon.RotatorApps(cfg), Settings: daemon.RotatorSettings(cfg),
		Clock: e.opts.Clock}), nil
}

// WaitRotated waits until AWSCURRENT holds the simulator's newest secret and it is not the first.
func (e *Env) WaitRotated(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		newest, _, ok := e.Sim.Newest(e.ClientID)
		if cur, err := e.Store.Current(ctx, e.SecretID); err == nil && ok &&
			!cur.Record.ClientSecret.Equal(e.FirstSecret) && cur.Record.ClientSecret.Equal(newest) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no rotation completed within %s", limit)
		case <-tick.C:
		}
	}
}

// Report prints what the rotation left in the vault and the queues, by fingerprint only.
func (e *Env) Report(ctx context.Context, out io.Writer, start time.Time) error {
	cur, err := e.Store.Current(ctx, e.SecretID)
	if err != nil {
		return err
	}
	prev, err := e.Store.Previous(ctx, e.SecretID)
	if err != nil {
		return err
	}
	_, pending, err := e.Store.Pending(ctx, e.SecretID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "2. the daemon called rotateApplicationClientSecret (%d call) with a grantless LWA token\n", e.Sim.RotateCalls(e.ClientID))
	fmt.Fprintf(out, "3. the new secret arrived on SQS, was staged as AWSPENDING, minted an LWA token, and was promoted\n")
	fmt.Fprintf(out, "   AWSCURRENT  version %s  secret %s  valid: %v  expires %s\n", cur.ID, spapisim.Fingerprint(cur.Record.ClientSecret),
		e.Sim.Valid(e.ClientID, cur.Record.ClientSecret), cur.Record.ExpiresAt.Format(time.RFC3339))
	fmt.Fprintf(out, "   AWSPREVIOUS version %s  secret %s  valid: %v  until  %s\n", prev.ID, spapisim.Fingerprint(prev.Record.ClientSecret),
		e.Sim.Valid(e.ClientID, prev.Record.ClientSecret), cur.Record.PreviousExpiresAt.Format(time.RFC3339))
	fmt.Fprintf(out, "   AWSPENDING left behind: %v\n", pending)
	var depths []string
	for _, q := range []string{e.ExpiryQueue, e.SecretQueue} {
		n, err := e.QueueDepth(ctx, q)
		if err != nil {
			return err
		}
		depths = append(depths, fmt.Sprintf("%s=%d", q[strings.LastIndex(q, "/")+1:], n))
	}
	fmt.Fprintf(out, "4. queues: %s\nRotation complete in %s (secret values are shown only as fingerprints).\n",
		strings.Join(depths, " "), time.Since(start).Round(time.Millisecond))
	return nil
}

// PrintStatus prints what `lwa-rotator status` shows for this world.
func (e *Env) PrintStatus(ctx context.Context, out io.Writer) error {
	rep, err := e.Status(ctx)
	if err != nil {
		return err
	}
	return status.WriteTable(out, rep)
}

// Status is the report `lwa-rotator status` makes for this world: the daemon's decision on each
// application's secret as the vault holds it now.
func (e *Env) Status(ctx context.Context) (status.Report, error) {
	cfg, err := config.Load(e.ConfigPath, func(string) string { return "" })
	if err != nil {
		return status.Report{}, fmt.Errorf("loading the sandbox configuration for status: %w", err)
	}
	states := status.ReadAll(ctx, e.Store, daemon.RotatorApps(cfg))
	return status.Build(states, daemon.RotatorSettings(cfg), e.opts.Clock.Now()), nil
}

// PrintWindowWait prints the daemon's decision on the first application while its due rotation
// waits for the window, and the rotate calls so far (none).
func (e *Env) PrintWindowWait(ctx context.Context, out io.Writer) error {
	rep, err := e.Status(ctx)
	if err != nil {
		return err
	}
	for _, a := range rep.Applications {
		if a.Name != e.AppName {
			continue
		}
		if a.Reason != "window-wait" {
			fmt.Fprintf(out, "   the daemon's decision: phase %s (%s); the window is not what it waits for\n", a.Phase, a.Reason)
			return nil
		}
		opens, _ := time.Parse(time.RFC3339Nano, a.WindowOpensAt)
		fmt.Fprintf(out, "   the daemon's decision: phase %s (%s): waiting for the rotation window, opens at %s (in %s); the old secret then dies at %s\n",
			a.Phase, a.Reason, a.WindowOpensAt, opens.Sub(e.opts.Clock.Now()).Round(time.Second), a.OldSecretDiesAt)
		fmt.Fprintf(out, "   rotate calls so far: %d\n", e.Sim.RotateCalls(e.ClientID))
	}
	return nil
}

// firstRotateCall is when the simulator first answered the first application's rotate endpoint.
func firstRotateCall(e *Env) string {
	for _, r := range e.Sim.Received() {
		if r.Endpoint == "rotate" && r.ClientID == e.ClientID {
			return r.Time.UTC().Format(time.RFC3339Nano)
		}
	}
	return "(no call recorded)"
}

func waitStop(ctx context.Context, signals <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-signals:
			if s == syscall.SIGINT || s == syscall.SIGTERM {
				return
			}
		}
	}
}

// consoleLogger writes human-readable lines for the sandbox; production logs JSON.
func consoleLogger(level zap.AtomicLevel) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), level)
	return zap.New(core)
}
