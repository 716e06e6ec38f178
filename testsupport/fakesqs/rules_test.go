package fakesqs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/spapi-tools/lwa-rotator/testsupport/awstest"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesqs"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// api is what the rows call, served by the fake or by moto.
type api interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var (
	_ api = (*fakesqs.Fake)(nil)
	_ api = (*sqs.Client)(nil)
)

// env is one backend for a row. clk is nil on moto: rows that move time are model-only.
type env struct {
	t      *testing.T
	sqs    api
	clk    *fakeclock.Fake
	fake   *fakesqs.Fake
	create func(name string, o fakesqs.QueueOptions) string
}

var motoSeq atomic.Int64

func fakeEnv(t *testing.T) *env {
	clk := fakeclock.New(epoch)
	f := fakesqs.New(clk)
	return &env{t: t, sqs: f, clk: clk, fake: f, create: f.CreateQueue}
}

func motoEnv(t *testing.T) *env {
	if motoErr != nil {
		t.Fatalf("moto is required: %v", motoErr)
	}
	client := awstest.NewClients(motoURL, nil).SQS
	prefix := "fakesqs-row-" + strconv.FormatInt(motoSeq.Add(1), 10)
	e := &env{t: t, sqs: client}
	e.create = func(name string, o fakesqs.QueueOptions) string {
		t.Helper()
		ctx := context.Background()
		attrs := map[string]string{}
		if o.VisibilityTimeout > 0 {
			attrs["VisibilityTimeout"] = strconv.Itoa(int(o.VisibilityTimeout / time.Second))
		}
		if o.DeadLetter != "" {
			dlq := e.queueAttrs(e.motoURL(prefix+"-"+o.DeadLetter), "QueueArn")["QueueArn"]
			attrs["RedrivePolicy"] = fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, dlq, o.MaxReceiveCount)
		}
		if o.KMSKeyID != "" {
			attrs["KmsMasterKeyId"] = o.KMSKeyID
		}
		if o.SSE {
			attrs["SqsManagedSseEnabled"] = "true"
		}
		out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(prefix + "-" + name), Attributes: attrs})
		if err != nil {
			t.Fatalf("CreateQueue: %v", err)
		}
		return aws.ToString(out.QueueUrl)
	}
	return e
}

func (e *env) motoURL(name string) string {
	out, err := e.sqs.(*sqs.Client).GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		e.t.Fatalf("GetQueueUrl %s: %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

func (e *env) send(url, body string) string {
	e.t.Helper()
	out, err := e.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)})
	if err != nil {
		e.t.Fatalf("SendMessage: %v", err)
	}
	return aws.ToString(out.MessageId)
}

// receive takes what is receivable now (no wait) with every system attribute.
func (e *env) receive(url string, vis int32) []types.Message {
	e.t.Helper()
	out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
		VisibilityTimeout: vis, MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
	if err != nil {
		e.t.Fatalf("ReceiveMessage: %v", err)
	}
	return out.Messages
}

func (e *env) receiveOne(url string, vis int32) types.Message {
	e.t.Helper()
	got := e.receive(url, vis)
	if len(got) != 1 {
		e.t.Fatalf("received %d messages, want 1", len(got))
	}
	return got[0]
}

func (e *env) change(url string, m types.Message, secs int32) error {
	_, err := e.sqs.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url),
		ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: secs})
	return err
}

func (e *env) delete(url, handle string) error {
	_, err := e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String(handle)})
	return err
}

func (e *env) queueAttrs(url string, names ...types.QueueAttributeName) map[string]string {
	e.t.Helper()
	out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: names})
	if err != nil {
		e.t.Fatalf("GetQueueAttributes: %v", err)
	}
	return out.Attributes
}

// code is the AWS error code of err, "" for nil.
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Errorf("%s: error code %q (%v), want %q", what, got, err, want)
	}
}

type row struct {
	name string
	// moto: the row also runs against moto, which agrees with AWS on it. Rows without it say why.
	moto bool
	run  func(e *env)
}

var rows = []row{
	{"a receive hides the message for the request's visibility timeout", true, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		e.send(q, "a")
		e.receiveOne(q, 60)
		if got := e.receive(q, 60); len(got) != 0 {
			e.t.Errorf("in-flight message received again: %d", len(got))
		}
	}},
	{"each receive has a new handle and counts the receive", true, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		id := e.send(q, "a")
		first := e.receiveOne(q, 60)
		if err := e.change(q, first, 0); err != nil {
			e.t.Fatalf("release: %v", err)
		}
		second := e.receiveOne(q, 60)
		if aws.ToString(second.ReceiptHandle) == aws.ToString(first.ReceiptHandle) {
			e.t.Error("second receive reused the first receipt handle")
		}
		if aws.ToString(second.MessageId) != id || second.Attributes["ApproximateReceiveCount"] != "2" {
			e.t.Errorf("second receive = id %s count %s, want id %s count 2", aws.ToString(second.MessageId), second.Attributes["ApproximateReceiveCount"], id)
		}
	}},
	{"system attributes are returned when asked", true, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		e.send(q, "a")
		m := e.receiveOne(q, 60)
		ms, err := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64)
		if err != nil || ms < 1e12 || m.Attributes["SenderId"] == "" || m.Attributes["ApproximateReceiveCount"] != "1" {
			e.t.Errorf("attributes = %v, want SenderId, SentTimestamp in ms and ApproximateReceiveCount 1", m.Attributes)
		}
		if e.clk != nil && ms != epoch.UnixMilli() {
			e.t.Errorf("SentTimestamp = %d, want the clock's %d", ms, epoch.UnixMilli())
		}
	}},
	{"system attributes are left out unless asked", true, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		e.send(q, "a")
		out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q),
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameSenderId}})
		if err != nil || len(out.Messages) != 1 {
			e.t.Fatalf("ReceiveMessage = %v, %v", out, err)
		}
		if a := out.Messages[0].Attributes; a["SenderId"] == "" || a["SentTimestamp"] != "" || a["ApproximateReceiveCount"] != "" {
			e.t.Errorf("attributes = %v, want only SenderId", a)
		}
	}},
	{"delete with the latest handle removes the message", true, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		e.send(q, "a")
		m := e.receiveOne(q, 60)
		if err := e.delete(q, aws.ToString(m.ReceiptHandle)); err != nil {
			e.t.Fatalf("DeleteMessage: %v", err)
		}
		if err := e.change(q, m, 0); err == nil {
			e.t.Error("changing the visibility of a deleted message succeeded")
		}
		if got := e.receive(q, 60); len(got) != 0 {
			e.t.Errorf("deleted message received again")
		}
	}},
	// moto deletes the message for any handle it ever issued; AWS documents that an old handle
	// succeeds but need not delete, and the fake takes that case.
	{"delete with an earlier handle succeeds and deletes nothing", false, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		e.send(q, "a")
		first := e.receiveOne(q, 60)
		if err := e.change(q, first, 0); err != nil {
			e.t.Fatalf("release: %v", err)
		}
		second := e.receiveOne(q, 60)
		if err := e.delete(q, aws.ToString(first.ReceiptHandle)); err != nil {
			e.t.Fatalf("DeleteMessage(earlier handle) = %v, want success", err)
		}
		if err := e.change(q, second, 0); err != nil {
			e.t.Fatalf("message gone after a delete with an earlier handle: %v", err)
		}
		e.receiveOne(q, 60)
	}},
	// moto lets any handle it issued change the visibility; on AWS the earlier receive's
	// handle no longer names the message in flight.
	{"only the latest handle changes visibility", false, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		e.send(q, "a")
		first := e.receiveOne(q, 60)
		if err := e.change(q, first, 0); err != nil {
			e.t.Fatalf("release: %v", err)
		}
		e.receiveOne(q, 60)
		wantCode(e.t, "change with the earlier handle", e.change(q, first, 0), "InvalidParameterValue")
		if got := e.receive(q, 60); len(got) != 0 {
			e.t.Error("an earlier handle released the message")
		}
	}},
	{"a garbage handle is invalid", true, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		e.send(q, "a")
		e.receiveOne(q, 60)
		wantCode(e.t, "delete", e.delete(q, "garbage"), "ReceiptHandleIsInvalid")
		wantCode(e.t, "change", e.change(q, types.Message{ReceiptHandle: aws.String("garbage")}, 0), "ReceiptHandleIsInvalid")
	}},
	{"visibility above 12 hours is refused", true, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		e.send(q, "a")
		m := e.receiveOne(q, 60)
		wantCode(e.t, "change to 43201 s", e.change(q, m, 43201), "InvalidParameterValue")
		// Not 43200: on a real clock some milliseconds have passed since the receive.
		wantCode(e.t, "change to 43000 s", e.change(q, m, 43000), "")
	}},
	// Needs the clock moved 6 hours; moto also does not enforce the total.
	{"visibility may not reach past 12 hours since the receive", false, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		e.send(q, "a")
		m := e.receiveOne(q, 4*3600)
		for range 2 {
			e.clk.Advance(3 * time.Hour)
			wantCode(e.t, "heartbeat", e.change(q, m, 4*3600), "")
		}
		wantCode(e.t, "change to exactly 12 h since the receive", e.change(q, m, 6*3600), "")
		wantCode(e.t, "change to 12 h + 1 s since the receive", e.change(q, m, 6*3600+1), "InvalidParameterValue")
	}},
	// Needs the clock moved.
	{"an expired visibility brings the message back", false, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{VisibilityTimeout: 2 * time.Minute})
		e.send(q, "a")
		e.receiveOne(q, 60)
		e.clk.Advance(59 * time.Second)
		if len(e.receive(q, 0)) != 0 {
			e.t.Fatal("message back before its visibility timeout")
		}
		e.clk.Advance(time.Second)
		m := e.receiveOne(q, 0) // the queue's 2 minutes now
		if m.Attributes["ApproximateReceiveCount"] != "2" {
			e.t.Errorf("receive count %s, want 2", m.Attributes["ApproximateReceiveCount"])
		}
		e.clk.Advance(2*time.Minute - time.Second)
		if len(e.receive(q, 0)) != 0 {
			e.t.Fatal("message back before the queue's visibility timeout")
		}
		e.clk.Advance(time.Second)
		e.receiveOne(q, 0)
	}},
	// Needs the clock moved.
	{"a message back in the queue is not in flight", false, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		e.send(q, "a")
		m := e.receiveOne(q, 60)
		e.clk.Advance(time.Minute)
		err := e.change(q, m, 60)
		wantCode(e.t, "change after expiry", err, "AWS.SimpleQueueService.MessageNotInflight")
		var typed *types.MessageNotInflight
		if !errors.As(err, &typed) {
			e.t.Errorf("error %T, want *types.MessageNotInflight", err)
		}
	}},
	{"a message received maxReceiveCount times moves to the dead-letter queue", true, func(e *env) {
		dlq := e.create("dlq", fakesqs.QueueOptions{})
		q := e.create("q", fakesqs.QueueOptions{MaxReceiveCount: 2, DeadLetter: "dlq"})
		id := e.send(q, "a")
		for range 2 {
			if err := e.change(q, e.receiveOne(q, 60), 0); err != nil {
				e.t.Fatalf("release: %v", err)
			}
		}
		if got := e.receive(q, 60); len(got) != 0 {
			e.t.Fatalf("message delivered a third time despite maxReceiveCount 2")
		}
		m := e.receiveOne(dlq, 60)
		if aws.ToString(m.MessageId) != id || aws.ToString(m.Body) != "a" {
			e.t.Errorf("dead letter = %s %q, want %s \"a\"", aws.ToString(m.MessageId), aws.ToString(m.Body), id)
		}
	}},
	{"MaxNumberOfMessages above 10 is refused", true, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		_, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 11})
		wantCode(e.t, "receive 11", err, "InvalidParameterValue")
	}},
	{"an unknown queue does not exist", true, func(e *env) {
		q := e.create("q", fakesqs.QueueOptions{})
		_, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q + "-missing"),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
		wantCode(e.t, "attributes of a missing queue", err, "AWS.SimpleQueueService.NonExistentQueue")
		var typed *types.QueueDoesNotExist
		if !errors.As(err, &typed) {
			e.t.Errorf("error %T, want *types.QueueDoesNotExist", err)
		}
	}},
	{"queue attributes show redrive, SSE-KMS and depth", true, func(e *env) {
		dlq := e.create("dlq", fakesqs.QueueOptions{})
		q := e.create("q", fakesqs.QueueOptions{VisibilityTimeout: 90 * time.Second, MaxReceiveCount: 3, DeadLetter: "dlq", KMSKeyID: "alias/lwa"})
		e.send(q, "a")
		e.send(q, "b")
		if out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 1}); err != nil || len(out.Messages) != 1 {
			e.t.Fatalf("ReceiveMessage = %v, %v; want one message", out, err)
		}
		a := e.queueAttrs(q, types.QueueAttributeNameAll)
		dlqArn := e.queueAttrs(dlq, types.QueueAttributeNameQueueArn)["QueueArn"]
		var rp struct {
			DeadLetterTargetArn string      `json:"deadLetterTargetArn"`
			MaxReceiveCount     json.Number `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(a["RedrivePolicy"]), &rp); err != nil || rp.DeadLetterTargetArn != dlqArn || rp.MaxReceiveCount != "3" {
			e.t.Errorf("RedrivePolicy = %s (%v), want target %s and maxReceiveCount 3", a["RedrivePolicy"], err, dlqArn)
		}
		if a["KmsMasterKeyId"] != "alias/lwa" || a["VisibilityTimeout"] != "90" || !strings.HasPrefix(a["QueueArn"], "arn:aws:sqs:") {
			e.t.Errorf("attributes = %v, want KmsMasterKeyId alias/lwa, VisibilityTimeout 90 and an ARN", a)
		}
		if a["ApproximateNumberOfMessages"] != "1" || a["ApproximateNumberOfMessagesNotVisible"] != "1" {
			e.t.Errorf("depth = %s visible %s in flight, want 1 and 1", a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"])
		}
		only := e.queueAttrs(q, types.QueueAttributeNameApproximateNumberOfMessages)
		if len(only) != 1 || only["ApproximateNumberOfMessages"] != "1" {
			e.t.Errorf("asking for one attribute returned %v", only)
		}
	}},
	{"queue attributes show SSE-SQS", true, func(e *env) {
		sse := e.create("sse", fakesqs.QueueOptions{SSE: true})
		if a := e.queueAttrs(sse, types.QueueAttributeNameAll); a["SqsManagedSseEnabled"] != "true" || a["KmsMasterKeyId"] != "" {
			e.t.Errorf("attributes = %v, want SqsManagedSseEnabled true and no KMS key", a)
		}
		if _, ok := e.queueAttrs(sse, types.QueueAttributeNameAll)["RedrivePolicy"]; ok {
			e.t.Error("a queue without a dead-letter queue has a RedrivePolicy")
		}
	}},
}

func TestRules(t *testing.T) {
	t.Parallel()
	for _, r := range rows {
		t.Run("model/"+r.name, func(t *testing.T) {
			t.Parallel()
			r.run(fakeEnv(t))
		})
		if r.moto {
			t.Run("moto/"+r.name, func(t *testing.T) {
				t.Parallel()
				r.run(motoEnv(t))
			})
		}
	}
}
