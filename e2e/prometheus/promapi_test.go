package prometheus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"
)

// promAPI is the part of Prometheus' HTTP API the test reads.
type promAPI struct{ base string }

type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) float() (float64, error) {
	str, ok := s.Value[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", s.Value[1])
	}
	return strconv.ParseFloat(str, 64)
}

type alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

type target struct {
	Labels    map[string]string `json:"labels"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

type ruleGroup struct {
	Name           string    `json:"name"`
	LastEvaluation time.Time `json:"lastEvaluation"`
	Rules          []struct {
		Name      string `json:"name"`
		Health    string `json:"health"`
		LastError string `json:"lastError"`
	} `json:"rules"`
}

// get decodes the data field of an API answer into out; an API-level error is an error.
func (p promAPI) get(ctx context.Context, path string, q url.Values, out any) error {
	u := p.base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("building GET %s: %w", path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading GET %s: %w", path, err)
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("decoding GET %s (HTTP %d): %w", path, resp.StatusCode, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("GET %s: status %q: %s", path, env.Status, env.Error)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("decoding the data of GET %s: %w", path, err)
	}
	return nil
}

func (p promAPI) query(ctx context.Context, expr string) ([]sample, error) {
	var data struct {
		ResultType string   `json:"resultType"`
		Result     []sample `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %q, want vector", expr, data.ResultType)
	}
	return data.Result, nil
}

func (p promAPI) alerts(ctx context.Context) ([]alert, error) {
	var data struct{ Alerts []alert }
	err := p.get(ctx, "/api/v1/alerts", nil, &data)
	return data.Alerts, err
}

func (p promAPI) targets(ctx context.Context) ([]target, error) {
	var data struct {
		ActiveTargets []target `json:"activeTargets"`
	}
	err := p.get(ctx, "/api/v1/targets", url.Values{"state": {"active"}}, &data)
	return data.ActiveTargets, err
}

func (p promAPI) rules(ctx context.Context) ([]ruleGroup, error) {
	var data struct{ Groups []ruleGroup }
	err := p.get(ctx, "/api/v1/rules", url.Values{"type": {"alert"}}, &data)
	return data.Groups, err
}

// eventually polls cond until it reports done or ctx ends. It waits on an external process whose
// progress the test cannot observe through a channel, so a ticker is the honest tool here.
func eventually(ctx context.Context, t *testing.T, what string, cond func(context.Context) (bool, string)) {
	t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := "never checked"
	for {
		ok, detail := cond(ctx)
		if ok {
			return
		}
		last = detail
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached before the deadline (%v); last check: %s", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}
