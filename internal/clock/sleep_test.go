package clock_test

import (
	"context"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
)

func TestSleep(t *testing.T) {
	t.Parallel()
	f := fakeclock.New(time.Unix(0, 0))
	done := make(chan bool, 1)
	go func() { done <- clock.Sleep(context.Background(), f, time.Minute) }()
	if err := f.WaitCreated(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Minute)
	if !<-done {
		t.Fatal("Sleep reported an ended context after its timer fired")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if clock.Sleep(ctx, f, time.Hour) {
		t.Fatal("Sleep with an ended context reported that the time passed")
	}
}
