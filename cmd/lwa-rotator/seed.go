package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/term"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/internal/daemon"
	"github.com/spapi-tools/lwa-rotator/internal/operator/seed"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// maxSecretInput bounds what seed reads from standard input; a client secret is ~80 bytes.
const maxSecretInput = 4096

func cmdSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfigPath(), "configuration file (env LWA_ROTATOR_CONFIG)")
	name := fs.String("app", "", "the application whose secret to store (its name in the configuration)")
	force := fs.Bool("force", false, "replace a different stored secret even if it still works (it stays as AWSPREVIOUS)")
	expires := fs.String("expires-at", "", "optional RFC 3339 time the secret expires (Developer Console); otherwise unknown until Amazon's expiry notice")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *name == "" || fs.NArg() > 0 {
		// A secret is never taken from the command line, where shell history and ps would see it.
		fmt.Fprintln(stderr, "seed: --app NAME is required; the secret is read from standard input or a no-echo prompt, never from an argument")
		return errUsage
	}
	var expiresAt time.Time
	if *expires != "" {
		t, err := time.Parse(time.RFC3339, *expires)
		if err != nil {
			fmt.Fprintln(stderr, "seed: --expires-at is not an RFC 3339 time (for example 2026-09-01T12:00:00Z)")
			return errUsage
		}
		expiresAt = t.UTC()
	}
	cfg, awsCfg, err := operatorSetup(ctx, *cfgPath)
	if err != nil {
		return err
	}
	app, err := rotatorApp(cfg, *name)
	if err != nil {
		return err
	}
	value, err := readSecret(os.Stdin, stderr, app.Name)
	if err != nil {
		return err
	}
	deps := seed.Deps{SM: secretsmanager.NewFromConfig(awsCfg), Vault: operatorStore(cfg, awsCfg),
		LWA: &spapi.LWAClient{Endpoint: cfg.Endpoints.LWA}, Clock: clock.Real{}}
	res, err := seed.Seed(ctx, deps, seed.Options{App: app, Settings: daemon.RotatorSettings(cfg), KMSKeyID: cfg.KMSKeyID,
		Format: vault.Format(cfg.SecretFormat), ExpiresAt: expiresAt, Force: *force}, value)
	if err != nil {
		return fmt.Errorf("seed %s: %w", app.Name, err)
	}
	if *asJSON {
		r := seedResult{Application: app.Name, Outcome: string(res.Outcome), SecretARN: res.ARN,
			VersionID: res.VersionID, ReplacedVersionID: res.Replaced}
		if res.DecisionErr == nil {
			r.Phase, r.Reason, r.NextActionAt = res.Decision.Phase.String(), string(res.Decision.Reason), stamp(res.Decision.NextActionAt)
		}
		return printJSONIf(true, stdout, r)
	}
	switch res.Outcome {
	case seed.Created:
		fmt.Fprintf(stdout, "%s: the secret minted an LWA token; created secret %s (key %s) with it as AWSCURRENT version %s\n",
			app.Name, res.ARN, cfg.KMSKeyID, res.VersionID)
	case seed.Stored:
		replaced := ""
		if res.Replaced != "" {
			replaced = fmt.Sprintf("; version %s is now AWSPREVIOUS", res.Replaced)
		}
		fmt.Fprintf(stdout, "%s: the secret minted an LWA token; stored as AWSCURRENT version %s of %s%s\n", app.Name, res.VersionID, res.ARN, replaced)
	case seed.Unchanged:
		fmt.Fprintf(stdout, "%s: AWSCURRENT (version %s) already holds this client secret; nothing changed\n", app.Name, res.VersionID)
	}
	// What the daemon will do with the secret: above all, when it rotates it first.
	if res.DecisionErr != nil {
		fmt.Fprintf(stdout, "%s: stored, but %v: see lwa-rotator status\n", app.Name, res.DecisionErr)
		return nil
	}
	fmt.Fprintf(stdout, "%s: %s\n", app.Name, decisionLine(res.Decision))
	return nil
}

// seedResult is seed's --json output (docs/operations.md).
type seedResult struct {
	Application       string `json:"application"`
	Outcome           string `json:"outcome"`
	SecretARN         string `json:"secretArn"`
	VersionID         string `json:"versionId"`
	ReplacedVersionID string `json:"replacedVersionId,omitempty"`
	// Phase, Reason and NextActionAt are the daemon's decision on the secret as seed left it;
	// absent when it could not be read back.
	Phase        string `json:"phase,omitempty"`
	Reason       string `json:"reason,omitempty"`
	NextActionAt string `json:"nextActionAt,omitempty"`
}

// readSecret takes the secret from a no-echo prompt when standard input is a terminal, else
// from standard input itself (a pipe or a file), trimming the surrounding whitespace.
func readSecret(in *os.File, prompt io.Writer, app string) (secret.Value, error) {
	var raw []byte
	if fd := int(in.Fd()); term.IsTerminal(fd) {
		fmt.Fprintf(prompt, "Client secret of %s (input hidden): ", app)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return secret.Value{}, fmt.Errorf("reading the secret from the terminal: %w", err)
		}
		raw = b
	} else {
		b, err := io.ReadAll(io.LimitReader(in, maxSecretInput+1))
		if err != nil {
			return secret.Value{}, fmt.Errorf("reading the secret from standard input: %w", err)
		}
		if len(b) > maxSecretInput {
			return secret.Value{}, fmt.Errorf("reading the secret from standard input: more than %d bytes; pipe in only the client secret", maxSecretInput)
		}
		raw = b
	}
	v := secret.New(string(bytes.TrimSpace(raw)))
	clear(raw)
	return v, nil
}
