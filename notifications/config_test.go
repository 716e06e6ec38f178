package notifications

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesqs"
)

func TestConsumerRejectsBadConfig(t *testing.T) {
	t.Parallel()
	h := HandlerFunc(func(context.Context, Message) Result { return Result{} })
	fake := fakesqs.New(fakeclock.New(epoch))
	// Checked once the parallel subtests are done.
	t.Cleanup(func() {
		if n := fake.Count(fakesqs.OpReceiveMessage); n != 0 {
			t.Errorf("a misconfigured consumer polled %d times", n)
		}
	})
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
}
