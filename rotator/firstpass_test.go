package rotator

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestFirstPassDoneIsCalledOnceAfterTheFirstPass: Run tells FirstPassDone once, when every
// application has been read, and never again.
func TestFirstPassDoneIsCalledOnceAfterTheFirstPass(t *testing.T) {
	t.Parallel()
	fl := newFleet(t, 12, func(int) time.Time { return t0.Add(150 * day) }, 0)
	var calls atomic.Int32
	var allKnown atomic.Bool
	fl.r.firstPassDone = func() {
		known := true
		for _, s := range fl.r.Snapshot() {
			known = known && s.Known
		}
		allKnown.Store(known)
		calls.Add(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fl.r.Run(ctx) }()
	wctx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	// The first pass is over once Run waits on its timer; then one more pass.
	if err := fl.clk.WaitCreated(wctx, 1); err != nil {
		t.Fatal(err)
	}
	fl.clk.Advance(2 * time.Hour)
	if err := fl.clk.WaitCreated(wctx, 2); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("FirstPassDone called %d times over two passes, want 1", n)
	}
	if !allKnown.Load() {
		t.Error("FirstPassDone was called before every application was read")
	}
}
