package spapi

import (
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// Doer is *http.Client's Do, so tests can pass any client.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Observer is told about every HTTP call, for metrics. api is "lwa" or "spapi", operation is
// "token" or "rotateClientSecret", status is the HTTP status or 0 when no response arrived.
type Observer interface {
	ObserveRequest(api, operation string, status int, d time.Duration)
}

// maxBody bounds every response read: both APIs answer with a few hundred bytes.
const maxBody = 64 << 10

// defaultTimeout applies only when the caller gives no Doer; callers with their own client set
// their own.
const defaultTimeout = 30 * time.Second

const headerRequestID = "x-amzn-RequestId"

type response struct {
	Status    int
	Header    http.Header
	Body      []byte
	RequestID string
}

// transport is what both clients share: the HTTP client, clock, observer and logger, with nil
// fields already replaced by defaults.
type transport struct {
	doer Doer
	clk  clock.Clock
	obs  Observer
	log  *zap.Logger
}

func newTransport(d Doer, clk clock.Clock, obs Observer, log *zap.Logger) transport {
	if d == nil {
		d = &http.Client{Timeout: defaultTimeout}
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if obs == nil {
		obs = nopObserver{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	return transport{doer: d, clk: clk, obs: obs, log: log}
}

// roundTrip sends req and reads a bounded body. A failure to get a response is a transient
// *Error; any status, good or bad, is returned for the caller to classify.
func (t transport) roundTrip(api, op string, req *http.Request) (response, time.Duration, error) {
	start := t.clk.Now()
	resp, err := t.doer.Do(req)
	if err != nil {
		d := t.clk.Now().Sub(start)
		t.obs.ObserveRequest(api, op, 0, d)
		return response{}, d, &Error{API: api, Op: op, Kind: ErrTransient, Err: err}
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	// Drain a little more so a slightly oversized answer does not cost the connection.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	d := t.clk.Now().Sub(start)
	t.obs.ObserveRequest(api, op, resp.StatusCode, d)
	r := response{Status: resp.StatusCode, Header: resp.Header, Body: body, RequestID: resp.Header.Get(headerRequestID)}
	if rerr != nil {
		return r, d, &Error{API: api, Op: op, StatusCode: r.Status, RequestID: r.RequestID, Kind: ErrTransient, Err: rerr}
	}
	return r, d, nil
}

// logCall records one call: debug when it worked, warn when it did not. Only names, ids and
// statuses go in; err has already been scrubbed of secrets.
func (t transport) logCall(api, op, clientID string, status int, requestID string, d time.Duration, err error) {
	fields := []zap.Field{
		zap.String("api", api),
		zap.String("op", op),
		zap.String("client_id", clientID),
		zap.Int("status", status),
		zap.String("request_id", requestID),
		zap.Duration("duration", d),
	}
	if err != nil {
		t.log.Warn("SP-API call failed", append(fields, zap.Error(err))...)
		return
	}
	t.log.Debug("SP-API call succeeded", fields...)
}

type nopObserver struct{}

func (nopObserver) ObserveRequest(string, string, int, time.Duration) {}
