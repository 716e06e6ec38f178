package simulation

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakesqs"
)

// SQS numbers: the consumer's default visibility timeout and the redrive policy's maxReceiveCount.
const (
	visibilityTimeout = 60 * time.Second
	maxReceiveCount   = 5
)

// createQueue makes a queue with its dead-letter queue in the world's SQS.
func (s *sim) createQueue(name string) string {
	s.sqs.CreateQueue(name+"-dlq", fakesqs.QueueOptions{})
	return s.sqs.CreateQueue(name, fakesqs.QueueOptions{VisibilityTimeout: visibilityTimeout,
		MaxReceiveCount: maxReceiveCount, DeadLetter: name + "-dlq"})
}

// send puts out on the queue at url, as Amazon's account.
func (s *sim) send(url string, out outgoing) {
	id, err := s.sqs.Send(s.ctx, url, string(out.body), fakesqs.SendOptions{SenderID: amazonSender})
	if err != nil {
		s.violate(nil, "harness", "sending a notification: "+err.Error())
		return
	}
	s.sent[id] = out
	s.qDue[url] = s.clk.Now()
}

// sqsFault is fakesqs's fault hook: the consumer's receives, deletes and visibility changes fail
// while the scenario has armed failures for them. The harness's own sends never fail.
func (s *sim) sqsFault(c fakesqs.Call) fakesqs.Fault {
	var op sqsOp
	switch c.Op {
	case fakesqs.OpReceiveMessage:
		op = sqsReceive
	case fakesqs.OpDeleteMessage:
		op = sqsDelete
	case fakesqs.OpChangeMessageVisibility:
		op = sqsVisibility
	default:
		return fakesqs.Fault{}
	}
	if s.sqsFaults[op] == 0 {
		return fakesqs.Fault{}
	}
	s.sqsFaults[op]--
	switch op {
	case sqsDelete:
		s.tracef("sqs delete of %s fails; it comes back", c.MessageID)
	case sqsVisibility:
		s.tracef("sqs visibility change of %s fails", c.MessageID)
	}
	return fakesqs.Fault{Err: &smithy.GenericAPIError{Code: "InternalError", Message: "simulated failure", Fault: smithy.FaultServer}}
}

// sqsAPI is the consumer's SQS: the world's, seen through what the checks need.
type sqsAPI struct{ s *sim }

// ReceiveMessage never long-polls: the consumer's WaitTime cannot be zero (zero means its
// default of 20 s), and the fake clock moves only between the driver's steps, so a wait would
// never end. SQS promises no order, so the batch comes shuffled.
func (a sqsAPI) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	now := *in
	now.WaitTimeSeconds = 0
	out, err := a.s.sqs.ReceiveMessage(ctx, &now, opts...)
	if err != nil {
		return out, err
	}
	a.s.rng.Shuffle(len(out.Messages), func(i, j int) { out.Messages[i], out.Messages[j] = out.Messages[j], out.Messages[i] })
	for _, m := range out.Messages {
		a.s.handles[aws.ToString(m.ReceiptHandle)] = aws.ToString(m.MessageId)
	}
	return out, nil
}

// DeleteMessage checks invariant 1 at the moment the consumer deletes.
func (a sqsAPI) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	id := a.s.handles[aws.ToString(in.ReceiptHandle)]
	a.s.checkAck(id)
	return a.s.sqs.DeleteMessage(ctx, in, opts...)
}

func (a sqsAPI) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return a.s.sqs.ChangeMessageVisibility(ctx, in, opts...)
}

// collectDeadLetters counts the messages the redrive policy parked since the last look.
func (s *sim) collectDeadLetters() {
	for _, q := range s.queues() {
		dl := s.sqs.DeadLetters(q)
		for _, m := range dl[s.dlqSeen[q]:] {
			s.deadLettered(m.ID)
		}
		s.dlqSeen[q] = len(dl)
	}
}

// nextVisible is the earliest time after now a message of the queue becomes receivable, or zero.
func (s *sim) nextVisible(url string, now time.Time) time.Time {
	var next time.Time
	for _, m := range s.sqs.Messages(url) {
		if m.VisibleAt.After(now) && (next.IsZero() || m.VisibleAt.Before(next)) {
			next = m.VisibleAt
		}
	}
	return next
}
