package notifications

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/zap"
)

// QueueAttributes is the part of *sqs.Client the queue checks and the dead-letter watcher use.
type QueueAttributes interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// CheckQueues proves the queues at urls are reachable and encrypted, and finds each queue's
// dead-letter queue (by queue URL). Queue URLs change only on restart, so this runs at start-up
// only. Reachability problems are only told to obs (they may pass); a positive finding of
// missing encryption is returned as a violation.
func CheckQueues(ctx context.Context, q QueueAttributes, urls []string, obs Observer, log *zap.Logger) (dlqs map[string]string, violations []string) {
	dlqs = map[string]string{}
	for _, url := range urls {
		out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
		obs.Polled(url, 0, err)
		if err != nil {
			log.Error("queue unreachable at start-up", zap.String("queue_url", url), zap.Error(err))
			continue
		}
		a := out.Attributes
		if a["KmsMasterKeyId"] == "" && a["SqsManagedSseEnabled"] != "true" {
			violations = append(violations, fmt.Sprintf("queue %s has no server-side encryption (SSE-KMS or SSE-SQS)", url))
		}
		if dlq, ok := deadLetterURL(url, a); ok {
			dlqs[url] = dlq
		} else {
			log.Warn("queue has no dead-letter queue: messages the daemon refuses come back forever", zap.String("queue_url", url))
		}
	}
	return dlqs, violations
}
