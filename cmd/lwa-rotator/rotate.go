package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/internal/daemon"
	"github.com/spapi-tools/lwa-rotator/internal/operator/request"
	"github.com/spapi-tools/lwa-rotator/rotator"
)

// waitPoll is how often --wait reads the secret with the daemon's read: one DescribeSecret each
// time, and a GetSecretValue only for a version it has not read before.
const waitPoll = 2 * time.Second

func cmdRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rotate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfigPath(), "configuration file (env LWA_ROTATOR_CONFIG)")
	name := fs.String("app", "", "the application to rotate (its name in the configuration)")
	wait := fs.Bool("wait", false, "follow the rotation until the new secret is AWSCURRENT and print its version id")
	timeout := fs.Duration("timeout", 15*time.Minute, "with --wait: give up after this long (the rotation itself carries on)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object (progress lines stay on stderr)")
	reason := fs.String("reason", "", "why, recorded in the lwa-rotator:request-reason tag (letters, digits, spaces and _ . : / = + - @)")
	inWindow := fs.Bool("in-window", false, "wait until the application's rotation window is open before requesting (Ctrl-C cancels; nothing is written before)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *name == "" {
		fmt.Fprintln(stderr, "rotate: --app NAME is required")
		return errUsage
	}
	cfg, awsCfg, err := operatorSetup(ctx, *cfgPath)
	if err != nil {
		return err
	}
	app, err := rotatorApp(cfg, *name)
	if err != nil {
		return err
	}
	m := request.Model{App: app, Settings: daemon.RotatorSettings(cfg)}
	store := operatorStore(cfg, awsCfg)
	clk := clock.Real{}
	var opened time.Time
	if *inWindow {
		if opened, err = untilWindow(ctx, clk, app, stderr); err != nil {
			return err
		}
	}
	got, err := request.Request(ctx, store, secretsmanager.NewFromConfig(awsCfg), clk, m, requester(), *reason)
	if err != nil {
		return fmt.Errorf("rotate %s: %w", app.Name, err)
	}
	// The daemon reads each application's tags once per round of requestPollInterval, spread
	// over the round and at least a second apart, then treats the request like a SIGUSR1.
	pickup := max(cfg.RequestPollInterval.D(), time.Duration(len(cfg.Applications))*time.Second)
	d := got.Decision
	result := rotateResult{Application: app.Name, SecretID: app.SecretID, RequestedAt: stamp(got.Request.At),
		CurrentVersionID: got.Snapshot.Current.ID, PickupWithinSeconds: int(pickup.Seconds()),
		Phase: d.Phase.String(), Reason: string(d.Reason), NextActionAt: stamp(d.NextActionAt), WindowOpenedAt: stamp(opened)}
	if !*asJSON {
		fmt.Fprintf(stdout, "%s: rotation requested at %s (secret %s, AWSCURRENT version %s); a running daemon picks it up within about %s\n",
			app.Name, got.Request.At.Format(time.RFC3339), app.SecretID, got.Snapshot.Current.ID, pickup)
		fmt.Fprintf(stdout, "%s: %s\n", app.Name, decisionLine(d))
	}
	if !*wait {
		return printJSONIf(*asJSON, stdout, result)
	}
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	id, err := request.Wait(wctx, store, clk, m, got.Snapshot.Current.ID, waitPoll, func(p request.Progress) {
		switch d := p.Decision; {
		case p.Err != nil:
			fmt.Fprintf(stderr, "%s: unreadable: %v\n", app.Name, p.Err)
		case d.Phase == rotator.PhaseDue && d.Reason == rotator.ReasonOperatorRequest:
			// The request waits for the daemon: said above.
		case d.Phase == rotator.PhaseRequested:
			fmt.Fprintf(stderr, "%s: the daemon called rotate at %s; awaiting the new secret until %s\n", app.Name,
				stamp(p.Snapshot.State.RequestedAt), stamp(d.AwaitDeadline))
		case d.Phase == rotator.PhasePending && d.Reason == rotator.ReasonNewSecretStaged:
			fmt.Fprintf(stderr, "%s: new secret staged as AWSPENDING (version %s); verifying\n", app.Name, p.Snapshot.Pending.ID)
		default:
			fmt.Fprintf(stderr, "%s: %s\n", app.Name, decisionLine(d))
		}
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("rotate %s: not promoted within %s; the rotation carries on (see lwa-rotator status): %w", app.Name, *timeout, errAttention)
		}
		return fmt.Errorf("rotate %s: %w", app.Name, err)
	}
	if *asJSON {
		result.PromotedVersionID = id
		return printJSONIf(true, stdout, result)
	}
	fmt.Fprintf(stdout, "%s: promoted: AWSCURRENT is now version %s\n", app.Name, id)
	return nil
}

// untilWindow holds the request until the application's rotation window is open, saying on
// stderr when that is; an interrupt cancels the wait before anything is written. It returns the
// opening it waited for, zero when the window was open already.
func untilWindow(ctx context.Context, clk clock.Clock, app rotator.App, stderr io.Writer) (time.Time, error) {
	if app.Window.IsZero() {
		fmt.Fprintf(stderr, "%s: no rotation window is configured: requesting now\n", app.Name)
		return time.Time{}, nil
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	waited := false
	at, err := request.UntilWindow(ctx, clk, app.Window, func(at time.Time) {
		waited = true
		fmt.Fprintf(stderr, "%s: the rotation window (%s) opens at %s (in %s); the request is written then (Ctrl-C cancels)\n",
			app.Name, app.Window, stamp(at), at.Sub(clk.Now()).Round(time.Second))
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("rotate %s: no request written: %w", app.Name, err)
	}
	if !waited {
		return time.Time{}, nil
	}
	return at, nil
}

// decisionLine is the daemon's decision for people: the phase and reason as status shows them,
// the reason's sentence, and when the daemon acts.
func decisionLine(d rotator.Decision) string {
	line := fmt.Sprintf("phase %s (%s): %s", d.Phase, d.Reason, d.Reason.Explain())
	if !d.NextActionAt.IsZero() {
		line += "; the daemon acts at " + stamp(d.NextActionAt)
	}
	return line
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// rotateResult is rotate's --json output (docs/operations.md).
type rotateResult struct {
	Application         string `json:"application"`
	SecretID            string `json:"secretId"`
	RequestedAt         string `json:"requestedAt"`
	CurrentVersionID    string `json:"currentVersionId"`
	PickupWithinSeconds int    `json:"pickupWithinSeconds"`
	// Phase, Reason and NextActionAt are the daemon's decision once it reads the request.
	Phase        string `json:"phase"`
	Reason       string `json:"reason"`
	NextActionAt string `json:"nextActionAt,omitempty"`
	// WindowOpenedAt is the opening of the rotation window the request waited for (--in-window).
	WindowOpenedAt string `json:"windowOpenedAt,omitempty"`
	// PromotedVersionID is set with --wait, once the new secret is AWSCURRENT.
	PromotedVersionID string `json:"promotedVersionId,omitempty"`
}

// requester names who asked, for the lwa-rotator:request-by tag: user@host, cut down to the
// characters a tag value may hold. CloudTrail records the IAM identity regardless.
func requester() string {
	who := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		who = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		who += "@" + h
	}
	who = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.:/=+-@", r) {
			return r
		}
		return '_'
	}, who)
	if len(who) > 128 {
		who = who[:128]
	}
	return who
}
