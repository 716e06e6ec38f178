package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/internal/operator/status"
	"github.com/spapi-tools/lwa-rotator/vault"
)

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfigPath(), "configuration file (env LWA_ROTATOR_CONFIG)")
	asJSON := fs.Bool("json", false, "print JSON (field names in docs/operations.md)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg, awsCfg, err := operatorSetup(ctx, *cfgPath)
	if err != nil {
		return err
	}
	apps := make([]status.App, 0, len(cfg.Applications))
	for _, a := range cfg.Applications {
		apps = append(apps, status.App{Name: a.Name, SecretID: a.SecretID})
	}
	states := status.ReadAll(ctx, secretsmanager.NewFromConfig(awsCfg), vault.Format(cfg.SecretFormat), apps)
	rep := status.Build(states, status.Settings{RenewBefore: cfg.RenewBefore.D(), AwaitDeadline: cfg.AwaitDeadline.D()}, time.Now())
	if *asJSON {
		err = status.WriteJSON(stdout, rep)
	} else {
		err = status.WriteTable(stdout, rep)
	}
	if err != nil {
		return fmt.Errorf("printing the status: %w", err)
	}
	if rep.Attention {
		n := 0
		for _, a := range rep.Applications {
			if a.Attention {
				n++
			}
		}
		return fmt.Errorf("status: %d application(s) %w", n, errAttention)
	}
	return nil
}
