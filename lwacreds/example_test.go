package lwacreds_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/lwacreds"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// An application that calls SP-API on a seller's behalf. It reads its LWA client id and secret
// from the secret lwa-rotator rotates, and keeps one TokenSource for the life of the process:
// across a rotation, and after the old secret dies, its calls keep working without a restart.
func Example() {
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatalf("loading AWS configuration: %v", err)
	}
	store, err := lwacreds.NewStore(secretsmanager.NewFromConfig(cfg), "lwa/my-app", lwacreds.StoreOptions{
		// Log a failed re-read: the cached secret still serves, but someone should know.
		OnReadError: func(err error) { log.Printf("reading the LWA secret: %v", err) },
	})
	if err != nil {
		log.Fatal(err)
	}
	// The seller's refresh token is not rotated by lwa-rotator; read it however the
	// application already does. Keep it in a secret.Value so it cannot be logged by accident.
	tokens, err := lwacreds.NewRefreshTokenSource(store, secret.New(os.Getenv("SPAPI_REFRESH_TOKEN")), lwacreds.TokenOptions{})
	if err != nil {
		log.Fatal(err)
	}

	client := &http.Client{Timeout: 30 * time.Second}
	status, err := getMarketplaceParticipations(ctx, client, tokens)
	if err != nil {
		log.Fatalf("calling SP-API: %v", err) // the error never holds the secret or a token
	}
	fmt.Println("SP-API answered", status)
}

// getMarketplaceParticipations is one SP-API call: ask the token source for a token on every
// call (it is cached, so this costs nothing) instead of keeping a token or a secret around.
func getMarketplaceParticipations(ctx context.Context, client *http.Client, tokens *lwacreds.TokenSource) (int, error) {
	tok, err := tokens.Token(ctx)
	if err != nil {
		return 0, fmt.Errorf("getting an LWA token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		"https://sellingpartnerapi-na.amazon.com/sellers/v1/marketplaceParticipations", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("x-amz-access-token", tok.AccessToken.Reveal())
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// A grantless operation (here the Notifications API's destinations) uses the
// client_credentials grant with that operation's scope; no seller is involved.
func ExampleNewGrantlessTokenSource() {
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatalf("loading AWS configuration: %v", err)
	}
	store, err := lwacreds.NewStore(secretsmanager.NewFromConfig(cfg), "lwa/my-app", lwacreds.StoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	tokens, err := lwacreds.NewGrantlessTokenSource(store, "sellingpartnerapi::notifications", lwacreds.TokenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tokens.Token(ctx); err != nil {
		log.Fatalf("getting a grantless token: %v", err)
	}
}
