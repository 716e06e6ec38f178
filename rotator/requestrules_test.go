package rotator

import (
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault"
)

func TestRequestPendingAndServed(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name            string
		st              vault.RotationState
		pending, served bool
	}{
		{"no request", vault.RotationState{}, false, false},
		{"new request", vault.RotationState{Request: vault.RotationRequest{At: at}}, true, false},
		{"served", vault.RotationState{Request: vault.RotationRequest{At: at}, ServedRequest: at}, false, true},
		{"a newer request after a served one", vault.RotationState{Request: vault.RotationRequest{At: at.Add(time.Hour)}, ServedRequest: at}, true, false},
		{"served note without the request", vault.RotationState{ServedRequest: at}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := RequestPending(tc.st); got != tc.pending {
				t.Errorf("RequestPending = %v, want %v", got, tc.pending)
			}
			if got := RequestServed(tc.st); got != tc.served {
				t.Errorf("RequestServed = %v, want %v", got, tc.served)
			}
		})
	}
}
