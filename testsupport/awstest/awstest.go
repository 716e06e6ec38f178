// Package awstest builds AWS SDK configurations for tests and the sandbox by hand: with
// AWS_CA_BUNDLE set, config.LoadDefaultConfig refuses a custom HTTP client, and a local moto
// needs neither the credential chain nor a real region.
package awstest

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Region is the region every local resource lives in.
const Region = "us-east-1"

// Config returns an aws.Config with static test credentials and the given HTTP client (nil: a
// default one).
func Config(httpClient *http.Client) aws.Config {
	if httpClient == nil {
		httpClient = &http.Client{}
	}
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		HTTPClient:  httpClient,
	}
}

// Clients is one client per AWS service the daemon uses, all pointed at one endpoint.
type Clients struct {
	SQS            *sqs.Client
	SecretsManager *secretsmanager.Client
	KMS            *kms.Client
}

// NewClients points every client at endpoint (a moto URL, or a proxy in front of it).
func NewClients(endpoint string, httpClient *http.Client) Clients {
	cfg := Config(httpClient)
	cfg.BaseEndpoint = aws.String(endpoint)
	return ClientsFrom(cfg)
}

// ClientsFrom makes the clients from any configuration (real AWS when a user opts in).
func ClientsFrom(cfg aws.Config) Clients {
	return Clients{
		SQS:            sqs.NewFromConfig(cfg),
		SecretsManager: secretsmanager.NewFromConfig(cfg),
		KMS:            kms.NewFromConfig(cfg),
	}
}

// Ping is a cheap call that proves the endpoint answers.
func (c Clients) Ping(ctx context.Context) error {
	_, err := c.SQS.ListQueues(ctx, &sqs.ListQueuesInput{})
	return err
}
