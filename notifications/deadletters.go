package notifications

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// DeadLetterQueue is a notification queue's DLQ, watched so that refused messages (which may
// carry a secret someone needs) show in a metric instead of sitting unseen.
type DeadLetterQueue struct {
	Label string // the source queue's metric label
	URL   string
}

// deadLetterURL finds the DLQ of a queue from its RedrivePolicy. SQS requires the DLQ to be in the
// queue's account and region, so its URL is the queue's with the last path element replaced.
func deadLetterURL(queueURL string, attrs map[string]string) (string, bool) {
	var rp struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	}
	if json.Unmarshal([]byte(attrs["RedrivePolicy"]), &rp) != nil || rp.DeadLetterTargetArn == "" {
		return "", false
	}
	name := rp.DeadLetterTargetArn[strings.LastIndex(rp.DeadLetterTargetArn, ":")+1:]
	i := strings.LastIndex(queueURL, "/")
	if name == "" || i < 0 {
		return "", false
	}
	return queueURL[:i+1] + name, true
}

// DeadLetterObserver receives each DLQ's depth, and how the reads went: a failed read leaves
// its queue's last depth standing, so the last round that read them all tells their age.
type DeadLetterObserver interface {
	DeadLetters(queue string, messages int)
	// DeadLetterReadFailed: reading the depth of queue's DLQ failed.
	DeadLetterReadFailed(queue string)
	// DeadLettersRead: a round read the depth of every DLQ; it ended at at.
	DeadLettersRead(at time.Time)
}

// DeadLetterWatcher reads each DLQ's depth every Every and tells Observer.
type DeadLetterWatcher struct {
	SQS      QueueAttributes
	Queues   []DeadLetterQueue
	Every    time.Duration
	Clock    clock.Clock // default the wall clock
	Observer DeadLetterObserver
	Log      *zap.Logger // default discards
}

// Run watches until ctx ends. A failed read is counted, logged and skipped until the next
// round; a round that shutdown cut short is not reported.
func (w *DeadLetterWatcher) Run(ctx context.Context) {
	clk, log := w.Clock, w.Log
	if clk == nil {
		clk = clock.Real{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	for {
		complete := true
		for _, d := range w.Queues {
			n, err := queueDepth(ctx, w.SQS, d.URL)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				complete = false
				w.Observer.DeadLetterReadFailed(d.Label)
				log.Warn("reading the dead-letter queue's depth", zap.String("queue", d.Label), zap.String("dlq_url", d.URL), zap.Error(err))
				continue
			}
			w.Observer.DeadLetters(d.Label, n)
		}
		if complete {
			w.Observer.DeadLettersRead(clk.Now())
		}
		if !clock.Sleep(ctx, clk, w.Every) {
			return
		}
	}
}

func queueDepth(ctx context.Context, q QueueAttributes, url string) (int, error) {
	out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, fmt.Errorf("reading the depth of %s: %w", url, err)
	}
	total := 0
	for _, k := range []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"} {
		n, err := strconv.Atoi(out.Attributes[k])
		if err != nil {
			return 0, fmt.Errorf("reading the depth of %s: %s=%q: %w", url, k, out.Attributes[k], err)
		}
		total += n
	}
	return total, nil
}
