package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/internal/daemon"
	"github.com/spapi-tools/lwa-rotator/internal/operator/status"
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
	// The daemon's own read and decision: status reports what the daemon does with what it reads.
	states := status.ReadAll(ctx, operatorStore(cfg, awsCfg), daemon.RotatorApps(cfg))
	rep := status.Build(states, daemon.RotatorSettings(cfg), clock.Real{}.Now())
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
