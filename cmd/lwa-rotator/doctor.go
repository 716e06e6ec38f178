package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/internal/doctor"
	"github.com/spapi-tools/lwa-rotator/spapi"
)

// errChecksFailed makes doctor exit 1 after printing its checklist.
var errChecksFailed = errors.New("doctor: some checks failed")

// awsEndpointVars are the SDK's endpoint overrides for the services doctor reads; doctor reads
// a secret, so they obey the same transport rule as the daemon's.
var awsEndpointVars = []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_KMS"}

func cmdDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfigPath(), "configuration file (env LWA_ROTATOR_CONFIG)")
	asJSON := fs.Bool("json", false, "print the checklist as JSON")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg, err := config.Load(*cfgPath, os.Getenv)
	if err != nil {
		return err
	}
	for _, v := range awsEndpointVars {
		if raw := os.Getenv(v); raw != "" {
			if err := cfg.CheckTransport(v, raw); err != nil {
				return err
			}
		}
	}
	// Credentials, region and endpoints come from the SDK's standard chain, as for `run`.
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading the AWS configuration: %w", err)
	}
	lwa := &spapi.LWAClient{Endpoint: cfg.Endpoints.LWA}
	rep := doctor.Run(ctx, cfg, doctor.Deps{
		SQS: sqs.NewFromConfig(awsCfg), KMS: kms.NewFromConfig(awsCfg), SecretsManager: secretsmanager.NewFromConfig(awsCfg), LWA: lwa,
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
