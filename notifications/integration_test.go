package notifications

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/testsupport/awstest"
)

// integrationGuard bounds the waits on moto; it is a failure deadline, not a pause.
const integrationGuard = 30 * time.Second

var queueSeq atomic.Int64

// newQueue creates a fresh queue on the shared moto, so parallel tests never share messages.
func newQueue(t *testing.T, bodies ...string) (*sqs.Client, string) {
	t.Helper()
	if motoErr != nil {
		t.Fatalf("moto is required: %v", motoErr)
	}
	ctx := context.Background()
	client := awstest.NewClients(motoURL, nil).SQS
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "-" + strconv.FormatInt(queueSeq.Add(1), 10)
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	for _, b := range bodies {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String(b)}); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}
	return client, aws.ToString(out.QueueUrl)
}

// runConsumer starts c on moto with the real clock and returns a stop function yielding Run's error.
func runConsumer(t *testing.T, c *Consumer) func() error {
	t.Helper()
	c.Clock = clock.Real{}
	c.WaitTime = time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(cancel)
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(integrationGuard):
			t.Fatal("Run did not return after cancel")
			return nil
		}
	}
}

// visible reads what a fresh receiver sees now, without taking it (visibility 0 releases at once).
func visible(t *testing.T, client *sqs.Client, queueURL string) []types.Message {
	t.Helper()
	out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 0,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	return out.Messages
}

func TestMotoDeletedMessageIsGone(t *testing.T) {
	t.Parallel()
	client, queueURL := newQueue(t, "hello")
	got := make(chan Message, 4)
	stop := runConsumer(t, &Consumer{SQS: client, QueueURL: queueURL, VisibilityTimeout: time.Second,
		Handler: HandlerFunc(func(_ context.Context, m Message) Result { got <- m; return Result{Delete: true} })})
	var m Message
	select {
	case m = <-got:
	case <-time.After(integrationGuard):
		t.Fatal("message never handled")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if string(m.Body) != "hello" || m.ReceiveCount != 1 || m.SenderID == "" || m.SentAt.IsZero() || m.ID == "" {
		t.Errorf("message = %+v, want body, receive count 1, sender and sent time", m)
	}
	if left := visible(t, client, queueURL); len(left) != 0 {
		t.Errorf("%d messages still in the queue after Delete", len(left))
	}
	if len(got) != 0 {
		t.Errorf("deleted message was handled again")
	}
}

func TestMotoUndeletedMessageComesBack(t *testing.T) {
	t.Parallel()
	client, queueURL := newQueue(t, "again")
	counts := make(chan int, 8)
	stop := runConsumer(t, &Consumer{SQS: client, QueueURL: queueURL, VisibilityTimeout: time.Second,
		Handler: HandlerFunc(func(_ context.Context, m Message) Result {
			counts <- m.ReceiveCount
			return Result{Delete: m.ReceiveCount >= 2}
		})})
	for want := 1; want <= 2; want++ {
		select {
		case n := <-counts:
			if n != want {
				t.Fatalf("receive count %d, want %d", n, want)
			}
		case <-time.After(integrationGuard):
			t.Fatalf("message not delivered a %d. time after its visibility timeout", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if left := visible(t, client, queueURL); len(left) != 0 {
		t.Errorf("%d messages left after the second delivery deleted it", len(left))
	}
}

func TestMotoDrainReleasesUnhandled(t *testing.T) {
	t.Parallel()
	client, queueURL := newQueue(t, "one", "two", "three")
	started, release := make(chan string, 1), make(chan struct{})
	stop := runConsumer(t, &Consumer{SQS: client, QueueURL: queueURL, VisibilityTimeout: time.Hour,
		Handler: HandlerFunc(func(_ context.Context, m Message) Result {
			started <- string(m.Body)
			<-release
			return Result{Delete: true}
		})})
	var first string
	select {
	case first = <-started:
	case <-time.After(integrationGuard):
		t.Fatal("no message handled")
	}
	result := make(chan error, 1)
	go func() { result <- stop() }()
	close(release)
	if err := <-result; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	// With an hour's visibility, only a release makes the rest of the batch receivable now.
	left := visible(t, client, queueURL)
	var bodies []string
	for _, m := range left {
		bodies = append(bodies, aws.ToString(m.Body))
		if aws.ToString(m.Body) == first {
			t.Errorf("handled message %q was not deleted", first)
		}
	}
	if len(left) != 2 {
		t.Fatalf("visible after drain = %q, want the two unhandled messages", bodies)
	}
	for _, m := range left {
		if m.Attributes["ApproximateReceiveCount"] != "2" {
			t.Errorf("message %q receive count %s, want 2 (taken by the consumer, then released)", aws.ToString(m.Body), m.Attributes["ApproximateReceiveCount"])
		}
	}
}
