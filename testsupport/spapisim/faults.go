package spapisim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// Fault makes the next Count matching events misbehave (Count ≤ 0 means 1). Faults on one
// target queue up in the order they were injected.
//
// Target "token" or "rotate": wait Delay on the simulator's clock (the request is abandoned if
// the client goes away), then answer Status with a proper error body, or answer normally when
// Status is 0. Target "delivery" (a notification about to be sent): Drop never sends it,
// Duplicate sends it twice, Reorder holds it until after the next delivery (or Flush), Delay
// holds it for Delay on the simulator's clock (or until Flush).
type Fault struct {
	Target    string
	Count     int
	Status    int
	Delay     time.Duration
	Duplicate bool
	Reorder   bool
	Drop      bool

	remaining int
}

// Fault targets.
const (
	TargetToken    = "token"
	TargetRotate   = "rotate"
	TargetDelivery = "delivery"
)

// Validate reports a fault that could never apply as intended.
func (f Fault) Validate() error {
	switch f.Target {
	case TargetToken, TargetRotate:
		if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
			return fmt.Errorf("fault status %d: want 0 or 400-599", f.Status)
		}
		if f.Duplicate || f.Reorder || f.Drop {
			return fmt.Errorf("fault on %s: duplicate, reorder and drop apply to deliveries only", f.Target)
		}
	case TargetDelivery:
		if f.Status != 0 {
			return fmt.Errorf("fault on delivery: status applies to token and rotate only")
		}
	default:
		return fmt.Errorf("fault target %q: want token, rotate or delivery", f.Target)
	}
	if f.Delay < 0 {
		return fmt.Errorf("fault delay %s is negative", f.Delay)
	}
	return nil
}

// InjectFault arms f. It panics on a fault that fails Validate, like httptest does on misuse:
// a typo in a test must not silently test nothing.
func (s *Sim) InjectFault(f Fault) {
	if err := f.Validate(); err != nil {
		panic("spapisim: " + err.Error())
	}
	f.remaining = max(f.Count, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// takeFault consumes one use of the first armed fault for target, or returns nil.
func (s *Sim) takeFault(target string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Target != target {
			continue
		}
		f.remaining--
		if f.remaining == 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		c := *f
		return &c
	}
	return nil
}

// wait sleeps d on the simulator's clock; false means ctx ended first.
func (s *Sim) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	return clock.Sleep(ctx, s.clk, d)
}

type faultJSON struct {
	Target    string `json:"target"`
	Count     int    `json:"count,omitempty"`
	Status    int    `json:"status,omitempty"`
	Delay     string `json:"delay,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Reorder   bool   `json:"reorder,omitempty"`
	Drop      bool   `json:"drop,omitempty"`
}

// MarshalJSON writes Delay as a Go duration string ("1m30s"), as the control API takes it.
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{f.Target, f.Count, f.Status, "", f.Duplicate, f.Reorder, f.Drop}
	if f.Delay != 0 {
		j.Delay = f.Delay.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the control API's fault document.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a misspelt knob must not silently do nothing
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("fault: %w", err)
	}
	var d time.Duration
	if j.Delay != "" {
		var err error
		if d, err = time.ParseDuration(j.Delay); err != nil {
			return fmt.Errorf("fault delay: %w", err)
		}
	}
	*f = Fault{Target: j.Target, Count: j.Count, Status: j.Status, Delay: d, Duplicate: j.Duplicate, Reorder: j.Reorder, Drop: j.Drop}
	return nil
}
