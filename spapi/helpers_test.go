package spapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type observation struct {
	api, op string
	status  int
	d       time.Duration
}

type recordingObserver struct {
	mu  sync.Mutex
	got []observation
}

func (r *recordingObserver) ObserveRequest(api, op string, status int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, observation{api, op, status, d})
}

func (r *recordingObserver) all() []observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observation(nil), r.got...)
}

// slowDoer moves the fake clock while the request is "on the wire", so a test can see that
// durations come from the injected clock.
type slowDoer struct {
	clk  *fakeclock.Fake
	took time.Duration
}

func (s slowDoer) Do(r *http.Request) (*http.Response, error) {
	s.clk.Advance(s.took)
	return http.DefaultClient.Do(r)
}

func newLogger() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// assertNoLeak fails if any log line or field carries one of the secrets.
func assertNoLeak(t *testing.T, logs *observer.ObservedLogs, secrets ...string) {
	t.Helper()
	for _, e := range logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line leaks a secret: %q", line)
			}
		}
	}
}

// onlyEntry returns the single log entry at level, failing otherwise.
func onlyEntry(t *testing.T, logs *observer.ObservedLogs, level zapcore.Level) map[string]any {
	t.Helper()
	var got []observer.LoggedEntry
	for _, e := range logs.All() {
		if e.Level == level {
			got = append(got, e)
		}
	}
	if len(got) != 1 {
		t.Fatalf("want 1 %s log entry, got %d: %v", level, len(got), logs.All())
	}
	return got[0].ContextMap()
}
