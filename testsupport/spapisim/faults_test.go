package spapisim_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

func TestEndpointFaults(t *testing.T) {
	t.Parallel()
	type call struct {
		target   string // "token" or "rotate"
		wantKind error  // nil: success
	}
	tests := []struct {
		name      string
		fault     spapisim.Fault
		calls     []call
		wantCalls int // accepted rotations
	}{
		{"token 503 twice", spapisim.Fault{Target: "token", Count: 2, Status: 503},
			[]call{{"token", spapi.ErrTransient}, {"token", spapi.ErrTransient}, {"token", nil}}, 0},
		{"token 401", spapisim.Fault{Target: "token", Status: 401}, []call{{"token", spapi.ErrInvalidClient}, {"token", nil}}, 0},
		{"token 400", spapisim.Fault{Target: "token", Status: 400}, []call{{"token", spapi.ErrRequest}}, 0},
		{"rotate 500", spapisim.Fault{Target: "rotate", Status: 500}, []call{{"rotate", spapi.ErrTransient}, {"rotate", nil}}, 1},
		{"rotate 429", spapisim.Fault{Target: "rotate", Status: 429}, []call{{"rotate", spapi.ErrThrottled}}, 0},
		{"rotate 403", spapisim.Fault{Target: "rotate", Status: 403}, []call{{"rotate", spapi.ErrUnauthorized}}, 0},
		{"rotate 400", spapisim.Fault{Target: "rotate", Status: 400}, []call{{"rotate", spapi.ErrNotEnrolled}}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tok := mint(e) // before the fault, so token faults hit only the calls below
			e.sim.InjectFault(tc.fault)
			var wantStatuses []int
			for i, c := range tc.calls {
				var err error
				if c.target == "token" {
					_, err = e.lwa.Token(context.Background(), clientID, secret.New(firstSecret))
				} else {
					_, err = e.app().RotateClientSecret(context.Background(), clientID, spapi.RegionNA, tok)
				}
				if c.wantKind == nil && err != nil || c.wantKind != nil && !errors.Is(err, c.wantKind) {
					t.Errorf("call %d: error %v, want %v", i, err, c.wantKind)
				}
				var se *spapi.Error
				switch {
				case errors.As(err, &se):
					wantStatuses = append(wantStatuses, se.StatusCode)
				case c.target == "token":
					wantStatuses = append(wantStatuses, 200)
				default:
					wantStatuses = append(wantStatuses, 204)
				}
			}
			var got []int
			for _, r := range e.sim.Received()[1:] {
				got = append(got, r.Status)
			}
			if !reflect.DeepEqual(got, wantStatuses) {
				t.Errorf("recorded statuses %v, want %v", got, wantStatuses)
			}
			if n := e.sim.RotateCalls(clientID); n != tc.wantCalls {
				t.Errorf("RotateCalls = %d, want %d", n, tc.wantCalls)
			}
			if n := len(e.dlv.all()); n != tc.wantCalls {
				t.Errorf("%d notifications delivered, want %d", n, tc.wantCalls)
			}
		})
	}
}

func TestEndpointDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		target     string
		cancel     bool
		wantKind   error
		wantStatus int
	}{
		{"token waits then answers", "token", false, nil, 200},
		{"rotate waits then answers", "rotate", false, nil, 204},
		{"token abandoned by the client", "token", true, context.Canceled, 0},
		{"rotate abandoned by the client", "rotate", true, context.Canceled, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tok := mint(e)
			e.sim.InjectFault(spapisim.Fault{Target: tc.target, Delay: 30 * time.Second})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				var err error
				if tc.target == "token" {
					_, err = e.lwa.Token(ctx, clientID, secret.New(firstSecret))
				} else {
					_, err = e.app().RotateClientSecret(ctx, clientID, spapi.RegionNA, tok)
				}
				done <- err
			}()
			if err := e.clk.WaitCreated(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				t.Fatalf("answered before the delay passed: %v", err)
			default:
			}
			if tc.cancel {
				cancel()
			} else {
				e.clk.Advance(30 * time.Second)
			}
			err := <-done
			if tc.wantKind == nil && err != nil || tc.wantKind != nil && !errors.Is(err, tc.wantKind) {
				t.Fatalf("error %v, want %v", err, tc.wantKind)
			}
			e.srv.Close() // waits for the handler to finish recording
			got := e.sim.Received()
			if last := got[len(got)-1]; last.Status != tc.wantStatus || last.Endpoint != tc.target {
				t.Errorf("last request %+v, want %s status %d", last, tc.target, tc.wantStatus)
			}
		})
	}
}

func TestDeliveryFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		faults     []spapisim.Fault
		events     int
		flush      bool
		advance    time.Duration
		wantBefore int   // deliveries before flush/advance
		wantOrder  []int // event indices in delivery order, at the end
		wantStates []string
	}{
		{"drop", []spapisim.Fault{{Target: "delivery", Drop: true}}, 2, false, 0, 1,
			[]int{1}, []string{"dropped", "delivered"}},
		{"drop twice", []spapisim.Fault{{Target: "delivery", Drop: true, Count: 2}}, 3, false, 0, 1,
			[]int{2}, []string{"dropped", "dropped", "delivered"}},
		{"duplicate", []spapisim.Fault{{Target: "delivery", Duplicate: true}}, 2, false, 0, 3,
			[]int{0, 0, 1}, []string{"delivered", "delivered"}},
		{"reorder", []spapisim.Fault{{Target: "delivery", Reorder: true}}, 2, false, 0, 2,
			[]int{1, 0}, []string{"delivered", "delivered"}},
		{"reorder released by flush", []spapisim.Fault{{Target: "delivery", Reorder: true}}, 1, true, 0, 0,
			[]int{0}, []string{"delivered"}},
		{"delay released by the clock", []spapisim.Fault{{Target: "delivery", Delay: time.Minute}}, 2, false, time.Minute, 1,
			[]int{1, 0}, []string{"delivered", "delivered"}},
		{"delay released by flush", []spapisim.Fault{{Target: "delivery", Delay: time.Hour}}, 1, true, 0, 0,
			[]int{0}, []string{"delivered"}},
		{"faults queue in order", []spapisim.Fault{{Target: "delivery", Drop: true}, {Target: "delivery", Duplicate: true}}, 3, false, 0, 3,
			[]int{1, 1, 2}, []string{"dropped", "delivered", "delivered"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for _, f := range tc.faults {
				e.sim.InjectFault(f)
			}
			var sent []string
			for range tc.events {
				id, err := e.sim.SendExpiryNotice(context.Background(), clientID, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				sent = append(sent, id)
			}
			e.dlv.waitSent(t, tc.wantBefore)
			if got := len(e.dlv.all()); got != tc.wantBefore {
				t.Fatalf("%d deliveries before release, want %d", got, tc.wantBefore)
			}
			if tc.flush {
				if err := e.sim.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if tc.advance > 0 {
				e.clk.Advance(tc.advance)
			}
			var want []string
			for _, i := range tc.wantOrder {
				want = append(want, sent[i])
			}
			e.dlv.waitSent(t, len(want)-tc.wantBefore)
			if got := ids(t, e.dlv.all()); !reflect.DeepEqual(got, want) {
				t.Errorf("delivered %v, want %v", got, want)
			}
			var states []string
			for _, n := range e.sim.Notifications() {
				states = append(states, n.State)
			}
			if !reflect.DeepEqual(states, tc.wantStates) {
				t.Errorf("states %v, want %v", states, tc.wantStates)
			}
		})
	}
}

func TestDeliveryFailureStillRotates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A queue error that quotes the message must not carry the secret into the record.
	e.dlv.fail = func(body string) error { return fmt.Errorf("queue rejected %s", body) }
	if err := e.rotate(t, firstSecret); err != nil {
		t.Fatalf("rotate must succeed even when delivery fails: %v", err)
	}
	newSec, _, _ := e.sim.Newest(clientID)
	notes := e.sim.Notifications()
	if len(notes) != 1 || notes[0].State != "failed" || notes[0].Sent != 0 || !strings.Contains(notes[0].Error, "queue rejected") {
		t.Errorf("notifications = %+v", notes)
	}
	if strings.Contains(notes[0].Error, newSec.Reveal()) {
		t.Error("the recorded delivery error carries the secret")
	}
	if !e.sim.Valid(clientID, newSec) || e.sim.RotateCalls(clientID) != 1 {
		t.Error("the rotation did not happen")
	}
	if _, err := e.sim.SendExpiryNotice(context.Background(), clientID, time.Time{}); err == nil {
		t.Error("SendExpiryNotice: want the delivery error")
	}
}

func TestInjectFaultRejectsNonsense(t *testing.T) {
	t.Parallel()
	tests := []spapisim.Fault{
		{Target: "tokens"},
		{Target: "token", Status: 200},
		{Target: "rotate", Drop: true},
		{Target: "delivery", Status: 500},
		{Target: "delivery", Delay: -time.Second},
	}
	for _, f := range tests {
		if f.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", f)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("InjectFault(%+v) did not panic", f)
				}
			}()
			spapisim.New(spapisim.Options{}).InjectFault(f)
		}()
	}
}
