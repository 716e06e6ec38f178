package notifications

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestConsumerRejectsBadConfig(t *testing.T) {
	t.Parallel()
	h := HandlerFunc(func(context.Context, Message) Result { return Result{} })
	fake := newFakeSQS()
	tests := []struct {
		name string
		c    Consumer
	}{
		{"no SQS", Consumer{QueueURL: "q", Handler: h}},
		{"no queue", Consumer{SQS: fake, Handler: h}},
		{"no handler", Consumer{SQS: fake, QueueURL: "q"}},
		{"too many messages", Consumer{SQS: fake, QueueURL: "q", Handler: h, MaxMessages: 11}},
		{"wait too long", Consumer{SQS: fake, QueueURL: "q", Handler: h, WaitTime: 21 * time.Second}},
		{"visibility too short", Consumer{SQS: fake, QueueURL: "q", Handler: h, VisibilityTimeout: time.Millisecond}},
		{"visibility too long", Consumer{SQS: fake, QueueURL: "q", Handler: h, VisibilityTimeout: 13 * time.Hour}},
		{"backoff inverted", Consumer{SQS: fake, QueueURL: "q", Handler: h, MinBackoff: time.Minute, MaxBackoff: time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.c.Run(context.Background()); !errors.Is(err, ErrConfig) {
				t.Errorf("Run = %v, want ErrConfig", err)
			}
		})
	}
	select {
	case <-fake.receives:
		t.Error("a misconfigured consumer polled")
	default:
	}
}
