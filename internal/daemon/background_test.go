package daemon_test

import (
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// The background units report on themselves from start-up (interval, failures, last success),
// and the dead-letter watch's rounds move its last success.
func TestBackgroundUnitsReportOnThemselves(t *testing.T) {
	t.Parallel()
	before := float64(time.Now().UnixNano()) / 1e9
	r, err := start(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour, DeadLetterInterval: time.Second}, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for series, want := range map[string]float64{
		`lwa_rotator_background_interval_seconds{unit="dead_letter_watch"}`:    1,
		`lwa_rotator_background_interval_seconds{unit="request_watch"}`:        60, // the default requestPollInterval
		`lwa_rotator_background_read_failures_total{unit="dead_letter_watch"}`: 0,
		`lwa_rotator_background_read_failures_total{unit="request_watch"}`:     0,
	} {
		if got, ok := metric(t, r.addr, series); !ok || got != want {
			t.Errorf("%s = %v (served: %v), want %v", series, got, ok, want)
		}
	}
	const dlq = `lwa_rotator_background_last_success_timestamp_seconds{unit="dead_letter_watch"}`
	first, ok := metric(t, r.addr, dlq)
	if !ok || first < before {
		t.Fatalf("%s = %v (served: %v), want at least the start-up, %v", dlq, first, ok, before)
	}
	if v, ok := metric(t, r.addr, `lwa_rotator_background_last_success_timestamp_seconds{unit="request_watch"}`); !ok || v < before {
		t.Errorf("the request watch's last success = %v (served: %v), want at least the start-up, %v", v, ok, before)
	}
	eventually(t, 10*time.Second, "the dead-letter watch's next round to move its last success", func() bool {
		v, _ := metric(t, r.addr, dlq)
		return v > first
	})
}
