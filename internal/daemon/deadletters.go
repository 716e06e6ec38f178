package daemon

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

// deadLetterQueue is a notification queue's DLQ, watched so that refused messages (which may carry
// a secret someone needs) show in a metric instead of sitting unseen.
type deadLetterQueue struct {
	label string // the source queue's metric label
	url   string
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

// deadLetterObserver receives each DLQ's depth.
type deadLetterObserver interface {
	DeadLetters(queue string, messages int)
}

// watchDeadLetters reads each DLQ's depth every interval until ctx ends.
func watchDeadLetters(ctx context.Context, q queueAttributes, dlqs []deadLetterQueue, every time.Duration, clk clock.Clock,
	obs deadLetterObserver, log *zap.Logger) {
	for {
		for _, d := range dlqs {
			n, err := queueDepth(ctx, q, d.url)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("reading the dead-letter queue's depth", zap.String("queue", d.label), zap.String("dlq_url", d.url), zap.Error(err))
				}
				continue
			}
			obs.DeadLetters(d.label, n)
		}
		if !clock.Sleep(ctx, clk, every) {
			return
		}
	}
}

func queueDepth(ctx context.Context, q queueAttributes, url string) (int, error) {
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
