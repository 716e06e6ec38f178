package backoff

import (
	"testing"
	"time"
)

func TestEqual(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{1, 0, 30 * time.Second},
		{1, 0.999999, time.Minute - time.Duration(0.000001*float64(30*time.Second))},
		{2, 0, time.Minute},
		{3, 0, 2 * time.Minute},
		{10, 0, 30 * time.Minute}, // capped at hi
		{100, 0.5, 45 * time.Minute},
	} {
		got := Equal(tc.attempt, time.Minute, time.Hour, func() float64 { return tc.rnd })
		if d := got - tc.want; d > time.Millisecond || d < -time.Millisecond {
			t.Errorf("Equal(%d, rnd %v) = %v, want %v", tc.attempt, tc.rnd, got, tc.want)
		}
	}
}
