package moto_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/spapi-tools/lwa-rotator/testsupport/awstest"
	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
)

func TestStartResetStop(t *testing.T) {
	ctx := context.Background()
	srv, err := moto.Start(ctx, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer srv.Stop()
	c := awstest.NewClients(srv.URL, nil)
	if _, err := c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q")}); err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	if err := srv.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	out, err := c.SQS.ListQueues(ctx, &sqs.ListQueuesInput{})
	if err != nil {
		t.Fatalf("ListQueues: %v", err)
	}
	if len(out.QueueUrls) != 0 {
		t.Fatalf("after reset, queues = %v", out.QueueUrls)
	}
}
