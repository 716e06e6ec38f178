package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/internal/daemon"
	"github.com/spapi-tools/lwa-rotator/internal/operator/doctor"
	"github.com/spapi-tools/lwa-rotator/spapi"
)

// errChecksFailed makes doctor exit 1 after printing its checklist.
var errChecksFailed = errors.New("doctor: some checks failed")

func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfigPath(), "configuration file (env LWA_ROTATOR_CONFIG)")
	asJSON := fs.Bool("json", false, "print the checklist as JSON")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg, awsCfg, err := operatorSetup(ctx, *cfgPath)
	if err != nil {
		return err
	}
	lwa := &spapi.LWAClient{Endpoint: cfg.Endpoints.LWA}
	rep := doctor.Run(ctx, cfg, doctor.Deps{
		SQS: sqs.NewFromConfig(awsCfg), KMS: kms.NewFromConfig(awsCfg), SecretsManager: secretsmanager.NewFromConfig(awsCfg), LWA: lwa,
		Vault: operatorStore(cfg, awsCfg), Apps: daemon.RotatorApps(cfg), Settings: daemon.RotatorSettings(cfg), Clock: clock.Real{},
	})
	if *asJSON {
		err = doctor.WriteJSON(stdout, rep)
	} else {
		err = doctor.WriteText(stdout, rep)
	}
	if err != nil {
		return fmt.Errorf("printing the checklist: %w", err)
	}
	if !rep.OK() {
		return errChecksFailed
	}
	return nil
}
