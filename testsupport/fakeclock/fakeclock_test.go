package fakeclock

import (
	"context"
	"testing"
	"time"
)

func TestFakeFiresTimersInOrderOnlyWhenDue(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := New(start)
	late := f.NewTimer(2 * time.Hour)
	early := f.NewTimer(time.Hour)

	f.Advance(59 * time.Minute)
	select {
	case <-early.C():
		t.Fatal("timer fired before its deadline")
	default:
	}
	f.Advance(time.Minute)
	if got := <-early.C(); !got.Equal(start.Add(time.Hour)) {
		t.Fatalf("early timer fired at %v, want %v", got, start.Add(time.Hour))
	}
	if !late.Stop() {
		t.Fatal("Stop on an armed timer returned false")
	}
	f.Advance(24 * time.Hour)
	select {
	case <-late.C():
		t.Fatal("stopped timer fired")
	default:
	}
	if f.Pending() != 0 {
		t.Fatalf("pending = %d, want 0", f.Pending())
	}
}

func TestFakeWaitCreated(t *testing.T) {
	t.Parallel()
	f := New(time.Unix(0, 0))
	done := make(chan error, 1)
	go func() { done <- f.WaitCreated(context.Background(), 1) }()
	f.NewTimer(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("WaitCreated: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.WaitCreated(ctx, 5); err == nil {
		t.Fatal("WaitCreated with a cancelled context returned nil")
	}
}

func TestFakeNextIsTheEarliestArmedDeadline(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := New(start)
	if _, ok := f.Next(); ok {
		t.Fatal("Next reported a deadline with no timer armed")
	}
	f.NewTimer(time.Hour)
	early := f.NewTimer(time.Minute)
	if next, ok := f.Next(); !ok || !next.Equal(start.Add(time.Minute)) {
		t.Fatalf("Next = %v, %v; want %v", next, ok, start.Add(time.Minute))
	}
	early.Stop()
	if next, _ := f.Next(); !next.Equal(start.Add(time.Hour)) {
		t.Fatalf("after Stop, Next = %v; want %v", next, start.Add(time.Hour))
	}
}
