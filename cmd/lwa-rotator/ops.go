package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/spapi-tools/lwa-rotator/config"
)

// errAttention makes an operator command exit 1 after it printed why.
var errAttention = errors.New("need attention")

// operatorEndpointVars are the SDK's endpoint overrides for Secrets Manager, which the operator
// commands read secrets from: they obey the daemon's transport rule.
var operatorEndpointVars = []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"}

// operatorSetup loads the configuration file and the AWS SDK's standard chain (credentials,
// region, endpoints) for status, rotate and seed.
func operatorSetup(ctx context.Context, path string) (*config.Config, aws.Config, error) {
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		return nil, aws.Config{}, err
	}
	for _, v := range operatorEndpointVars {
		if raw := os.Getenv(v); raw != "" {
			if err := cfg.CheckTransport(v, raw); err != nil {
				return nil, aws.Config{}, err
			}
		}
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	return cfg, awsCfg, nil
}

// findApp returns the configured application called name.
func findApp(cfg *config.Config, name string) (config.Application, error) {
	for _, a := range cfg.Applications {
		if a.Name == name {
			return a, nil
		}
	}
	var names []string
	for _, a := range cfg.Applications {
		names = append(names, a.Name)
	}
	return config.Application{}, fmt.Errorf("%w: no application %q in the configuration (have %v)", errUsage, name, names)
}
