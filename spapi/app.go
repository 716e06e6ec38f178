package spapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const rotatePath = "/applications/2023-11-30/clientSecret"

// AppClient calls the Application Management API. Endpoints overrides a region's host (a
// missing region uses DefaultEndpoint). Other nil fields default as in LWAClient. It keeps no
// rate limit of its own: when a call may be made is the rotation decision's to say (one a
// minute after the last call the vault records, whichever process made it).
type AppClient struct {
	HTTP      Doer
	Endpoints map[Region]string
	Log       *zap.Logger
	Clock     clock.Clock
	Observer  Observer
}

// throttledRetry is how long to wait after a 429 that names no Retry-After: Amazon's published
// limit of one rotate call a minute.
const throttledRetry = time.Minute

// RotateClientSecret asks Amazon to mint a new secret for clientID. 204 (any 2xx) is success;
// the new secret arrives later on SQS, never in the response. The request id is returned
// whenever a response arrived, on success and on failure.
func (c *AppClient) RotateClientSecret(ctx context.Context, clientID string, region Region, accessToken secret.Value) (string, error) {
	t := newTransport(c.HTTP, c.Clock, c.Observer, c.Log)
	if err := region.Validate(); err != nil {
		return "", &Error{API: apiSPAPI, Op: opRotate, Kind: ErrRequest, Err: err}
	}
	if clientID == "" || accessToken.IsZero() {
		return "", &Error{API: apiSPAPI, Op: opRotate, Kind: ErrRequest, Message: "client id and access token are required"}
	}
	endpoint, err := c.endpoint(region)
	if err != nil {
		return "", &Error{API: apiSPAPI, Op: opRotate, Kind: ErrRequest, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+rotatePath, http.NoBody)
	if err != nil {
		return "", &Error{API: apiSPAPI, Op: opRotate, Kind: ErrRequest, Err: err}
	}
	req.Header.Set("x-amz-access-token", accessToken.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "lwa-rotator (Language=Go)")

	resp, d, err := t.roundTrip(apiSPAPI, opRotate, req)
	if err != nil {
		t.logCall(apiSPAPI, opRotate, clientID, resp.Status, resp.RequestID, d, err)
		return resp.RequestID, err
	}
	if resp.Status >= 200 && resp.Status <= 299 {
		t.logCall(apiSPAPI, opRotate, clientID, resp.Status, resp.RequestID, d, nil)
		return resp.RequestID, nil
	}
	e := spapiError(resp, t.clk.Now(), accessToken.Reveal())
	if resp.Status == http.StatusTooManyRequests && e.RetryAfter == 0 {
		e.RetryAfter = throttledRetry
	}
	t.logCall(apiSPAPI, opRotate, clientID, resp.Status, resp.RequestID, d, e)
	return resp.RequestID, e
}

func (c *AppClient) endpoint(r Region) (string, error) {
	if e, ok := c.Endpoints[r]; ok && e != "" {
		return strings.TrimRight(e, "/"), nil
	}
	return DefaultEndpoint(r)
}
