package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/internal/daemon"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// errAttention makes an operator command exit 1 after it printed why.
var errAttention = errors.New("need attention")

// operatorSetup loads the configuration file and the AWS SDK's standard chain (credentials,
// region, endpoints) for doctor, status, rotate and seed. The AWS endpoint overrides obey the
// daemon's transport rule: these commands read secrets too.
func operatorSetup(ctx context.Context, path string) (*config.Config, aws.Config, error) {
	cfg, err := config.Load(path, os.Getenv)
	if err != nil {
		return nil, aws.Config{}, err
	}
	if err := cfg.CheckAWSEndpoints(os.Getenv); err != nil {
		return nil, aws.Config{}, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	return cfg, awsCfg, nil
}

// operatorStore is the vault as the daemon reads it, for the operator commands: each reads an
// application's secret with the daemon's own vault.Store.Read.
func operatorStore(cfg *config.Config, awsCfg aws.Config) *vault.Store {
	return &vault.Store{SM: secretsmanager.NewFromConfig(awsCfg), Format: vault.Format(cfg.SecretFormat)}
}

// rotatorApp is the configured application called name as the rotation model sees it (the
// daemon's own translation), or a usage error naming the configured ones.
func rotatorApp(cfg *config.Config, name string) (rotator.App, error) {
	if _, err := findApp(cfg, name); err != nil {
		return rotator.App{}, err
	}
	for _, a := range daemon.RotatorApps(cfg) {
		if a.Name == name {
			return a, nil
		}
	}
	return rotator.App{}, fmt.Errorf("%w: --app names no application in the configuration", errUsage)
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
	// The name is what the user typed: it is not repeated (a secret may be pasted anywhere).
	return config.Application{}, fmt.Errorf("%w: --app names no application in the configuration (have %v)", errUsage, names)
}

// printJSONIf writes v as one indented JSON object when on is set. The values are names, ids and
// times: never a secret.
func printJSONIf(on bool, w io.Writer, v any) error {
	if !on {
		return nil
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("printing the result: %w", err)
	}
	return nil
}
