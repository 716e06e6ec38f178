package sandbox

import (
	"fmt"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator/window"
)

// The sandbox's window opens at the first whole minute at least the asked time after start, on
// that minute's weekday (2026-06-01 is a Monday), and stays open two hours, across midnight too.
func TestRotationWindowOpensAfterStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		start string
		in    time.Duration
		opens string
		open  string // the range written
	}{
		{"2026-06-01T12:00:37.5Z", time.Minute, "2026-06-01T12:02:00Z", "Mon 12:02-14:02"},
		{"2026-06-01T12:00:00Z", time.Minute, "2026-06-01T12:01:00Z", "Mon 12:01-14:01"},
		{"2026-06-01T12:00:00Z", 90 * time.Second, "2026-06-01T12:02:00Z", "Mon 12:02-14:02"},
		{"2026-06-02T23:30:10Z", time.Minute, "2026-06-02T23:32:00Z", "Tue 23:32-01:32"},
		{"2026-06-02T23:59:30Z", time.Minute, "2026-06-03T00:01:00Z", "Wed 00:01-02:01"},
		{"2026-06-07T21:59:00Z", time.Minute, "2026-06-07T22:00:00Z", "Sun 22:00-00:00"},
		{"2026-06-07T22:30:00Z", 3 * time.Hour, "2026-06-08T01:30:00Z", "Mon 01:30-03:30"},
	}
	for _, tc := range tests {
		t.Run(tc.start+"+"+tc.in.String(), func(t *testing.T) {
			t.Parallel()
			start, err := time.Parse(time.RFC3339Nano, tc.start)
			if err != nil {
				t.Fatal(err)
			}
			opens, block := rotationWindow(start, tc.in)
			want := fmt.Sprintf("rotationWindow:\n  timeZone: UTC\n  open: [%q]\n", tc.open)
			if got := opens.Format(time.RFC3339Nano); got != tc.opens || block != want {
				t.Fatalf("rotationWindow = %s\n%s\nwant %s\n%s", got, block, tc.opens, want)
			}
			// The range means what was meant: closed at start, open from the opening for two hours.
			w, problems := window.Parse("UTC", []string{tc.open}, 7*24*time.Hour)
			if len(problems) > 0 {
				t.Fatal(problems)
			}
			from, to, ok := w.Next(start)
			if !ok || !from.Equal(opens) || !to.Equal(opens.Add(2*time.Hour)) || w.Open(start) {
				t.Fatalf("the window read back opens %s, closes %s (open at start: %v); want %s for 2h", from, to, w.Open(start), opens)
			}
		})
	}
}
