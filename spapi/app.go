package spapi

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const rotatePath = "/applications/2023-11-30/clientSecret"

// AppClient calls the Application Management API. Endpoints overrides a region's host (a
// missing region uses DefaultEndpoint); MinInterval is the local per-client rate limit (0 is
// one minute, Amazon's published limit). Other nil fields default as in LWAClient. An
// AppClient must not be copied after first use.
type AppClient struct {
	HTTP        Doer
	Endpoints   map[Region]string
	Log         *zap.Logger
	Clock       clock.Clock
	Observer    Observer
	MinInterval time.Duration

	mu   sync.Mutex
	next map[string]time.Time // earliest time the next call per client id may go out
}

// RotateClientSecret asks Amazon to mint a new secret for clientID. 204 (any 2xx) is success;
// the new secret arrives later on SQS, never in the response. The request id is returned
// whenever a response arrived, on success and on failure.
//
// A call sooner than MinInterval after the previous accepted call for the same client id, or
// while one is in flight, fails locally with a throttled *Error carrying RetryAfter.
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

	prev, wait := c.reserve(clientID, t.clk.Now())
	if wait > 0 {
		e := &Error{API: apiSPAPI, Op: opRotate, Kind: ErrThrottled, RetryAfter: wait, Message: "local rate limit: one rotation per client per interval"}
		t.log.Warn("rotate call held back by the local rate limit",
			zap.String("client_id", clientID), zap.Duration("retry_after", wait))
		return "", e
	}

	resp, d, err := t.roundTrip(apiSPAPI, opRotate, req)
	if err != nil {
		// The request may have reached Amazon and rotated, so the slot stays taken.
		t.logCall(apiSPAPI, opRotate, clientID, resp.Status, resp.RequestID, d, err)
		return resp.RequestID, err
	}
	if resp.Status >= 200 && resp.Status <= 299 {
		t.logCall(apiSPAPI, opRotate, clientID, resp.Status, resp.RequestID, d, nil)
		return resp.RequestID, nil
	}
	e := spapiError(resp, t.clk.Now(), accessToken.Reveal())
	switch {
	case resp.Status == http.StatusTooManyRequests:
		if e.RetryAfter == 0 {
			e.RetryAfter = c.interval()
		}
		c.extend(clientID, t.clk.Now().Add(e.RetryAfter))
	case resp.Status >= 400 && resp.Status <= 499:
		// A 4xx proves nothing rotated, so the caller may retry at once (say with a new token).
		c.release(clientID, prev)
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

func (c *AppClient) interval() time.Duration {
	if c.MinInterval > 0 {
		return c.MinInterval
	}
	return time.Minute
}

// reserve takes the client's slot before the request goes out, so two concurrent calls cannot
// both rotate. It returns the previous slot (for release) or how long to wait.
func (c *AppClient) reserve(clientID string, now time.Time) (prev time.Time, wait time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next == nil {
		c.next = make(map[string]time.Time)
	}
	prev = c.next[clientID]
	if now.Before(prev) {
		return prev, prev.Sub(now)
	}
	c.next[clientID] = now.Add(c.interval())
	return prev, 0
}

func (c *AppClient) release(clientID string, prev time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next[clientID] = prev
}

func (c *AppClient) extend(clientID string, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until.After(c.next[clientID]) {
		c.next[clientID] = until
	}
}
