package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/internal/operator/request"
)

// waitPoll is how often --wait reads the secret: one DescribeSecret each time.
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
	app, err := findApp(cfg, *name)
	if err != nil {
		return err
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	clk := clock.Real{}
	snap, req, err := request.Request(ctx, sm, clk, app.SecretID, requester(), *reason)
	if err != nil {
		return fmt.Errorf("rotate %s: %w", app.Name, err)
	}
	// The daemon reads each application's tags once per round of requestPollInterval, spread
	// over the round and at least a second apart, then treats the request like a SIGUSR1.
	pickup := max(cfg.RequestPollInterval.D(), time.Duration(len(cfg.Applications))*time.Second)
	result := rotateResult{Application: app.Name, SecretID: app.SecretID, RequestedAt: req.At.UTC().Format(time.RFC3339Nano),
		CurrentVersionID: snap.CurrentVersionID, PickupWithinSeconds: int(pickup.Seconds())}
	if !*asJSON {
		fmt.Fprintf(stdout, "%s: rotation requested at %s (secret %s, AWSCURRENT version %s); a running daemon picks it up within about %s\n",
			app.Name, req.At.Format(time.RFC3339), app.SecretID, snap.CurrentVersionID, pickup)
	}
	if !*wait {
		return printJSONIf(*asJSON, stdout, result)
	}
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	id, err := request.Wait(wctx, sm, clk, app.SecretID, snap.CurrentVersionID, waitPoll, func(p request.Phase, s request.Snapshot) {
		switch p {
		case request.PhaseInFlight:
			fmt.Fprintf(stderr, "%s: the daemon called rotate at %s; awaiting the new secret\n", app.Name, s.State.RequestedAt.UTC().Format(time.RFC3339))
		case request.PhaseStaged:
			fmt.Fprintf(stderr, "%s: new secret staged as AWSPENDING (version %s); verifying\n", app.Name, s.PendingVersionID)
		case request.PhaseRetrying:
			fmt.Fprintf(stderr, "%s: an attempt failed (%d so far); the daemon retries from %s\n", app.Name, s.State.Attempts, s.State.NextAttemptAt.UTC().Format(time.RFC3339))
		case request.PhaseRequested, request.PhasePromoted:
		default:
			fmt.Fprintf(stderr, "%s: %s\n", app.Name, p)
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

// rotateResult is rotate's --json output (docs/operations.md).
type rotateResult struct {
	Application         string `json:"application"`
	SecretID            string `json:"secretId"`
	RequestedAt         string `json:"requestedAt"`
	CurrentVersionID    string `json:"currentVersionId"`
	PickupWithinSeconds int    `json:"pickupWithinSeconds"`
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
