// Package fakesqs is the project's only in-memory Amazon SQS: standard queues with visibility
// timeouts on an injected clock, receive counts, per-receive receipt handles, redrive to a
// dead-letter queue and long polling. It follows AWS's documented behaviour rather than moto's,
// so that unit tests, the simulation and the sandbox all face the same rules.
package fakesqs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// Limits AWS documents for standard queues.
const (
	MaxVisibility      = 12 * time.Hour // ChangeMessageVisibility may not take a message past this since its receive
	MaxWait            = 20 * time.Second
	MaxMessages        = 10
	DefaultVisibility  = 30 * time.Second
	DefaultSenderID    = "AIDAFAKESQSSENDER000" // the IAM principal SendMessage calls are attributed to
	defaultAccount     = "123456789012"
	defaultRegion      = "us-east-1"
	handlePrefix       = "fakesqs:"
	maxVisibilitySecs  = int32(MaxVisibility / time.Second)
	maxWaitSecs        = int32(MaxWait / time.Second)
	defaultVisibleSecs = int32(DefaultVisibility / time.Second)
)

// Op names an SQS operation, for call counts, the call log and the fault hook.
type Op string

// The operations the fake serves.
const (
	OpReceiveMessage          Op = "ReceiveMessage"
	OpDeleteMessage           Op = "DeleteMessage"
	OpChangeMessageVisibility Op = "ChangeMessageVisibility"
	OpGetQueueAttributes      Op = "GetQueueAttributes"
	OpSendMessage             Op = "SendMessage"
	OpPurgeQueue              Op = "PurgeQueue"
)

// QueueOptions are a queue's attributes, set when it is created.
type QueueOptions struct {
	VisibilityTimeout time.Duration // default 30s, as SQS
	// MaxReceiveCount and DeadLetter form the redrive policy: a message received MaxReceiveCount
	// times that becomes receivable again moves to the queue named DeadLetter (created first).
	MaxReceiveCount int
	DeadLetter      string
	KMSKeyID        string // SSE-KMS; reported as KmsMasterKeyId
	SSE             bool   // SSE-SQS; reported as SqsManagedSseEnabled
}

// Call is one request as the fake saw it, before it took effect.
type Call struct {
	Op                Op
	QueueURL          string
	ReceiptHandle     string // DeleteMessage, ChangeMessageVisibility
	MessageID         string // the message ReceiptHandle names, when it names one
	VisibilityTimeout int32  // ChangeMessageVisibility
	// Input is the SDK request as the caller gave it (nil for Send); read it, never change it.
	Input any
}

// Fault is what the fault hook wants done with a call. A zero Fault lets the call through.
type Fault struct {
	Err error
	// AfterEffect applies the call, then returns Err: the ambiguous failure of a request that
	// reached SQS but whose answer was lost.
	AfterEffect bool
}

// FaultFunc decides a call's fault. It is called without the fake's lock held, so it may block
// or call the fake.
type FaultFunc func(Call) Fault

// SendOptions are what SendMessage cannot say through the SDK.
type SendOptions struct {
	// SenderID is the sending principal's id (default DefaultSenderID): Amazon's notifications
	// come from Amazon's account, not the test's.
	SenderID string
}

// MessageState is a copy of one stored message, for inspection.
type MessageState struct {
	ID, Body, SenderID string
	SentAt             time.Time
	ReceiveCount       int
	Visible            bool
	VisibleAt          time.Time // when an in-flight message becomes receivable again
	ReceiptHandle      string    // of the latest receive; "" if never received
	ReceivedAt         time.Time // of the latest receive
}

// Fake is an in-memory SQS. It is safe for concurrent use. Its one mutex is never held while
// reading the clock, calling a hook or waiting.
type Fake struct {
	clk      clock.Clock
	account  string
	region   string
	senderID string

	mu      sync.Mutex
	queues  map[string]*queue    // by URL
	handles map[string]handleRef // every handle ever issued: a stale one is not a garbage one
	fault   FaultFunc
	calls   []Call
	counts  map[Op]int
	called  chan struct{} // closed and replaced on every call, for WaitCount
	seq     int
}

type handleRef struct {
	queue *queue
	id    string
}

type queue struct {
	name, url, arn string
	opts           QueueOptions
	dlq            *queue
	msgs           []*message // in send order
	// changed is closed and replaced whenever a message may have become receivable, waking
	// long polls.
	changed chan struct{}
}

type message struct {
	id, body, sender string
	sent             time.Time
	receives         int
	visibleAt        time.Time
	handle           string
	receivedAt       time.Time
}

// New returns an empty SQS whose time is clk.
func New(clk clock.Clock) *Fake {
	return &Fake{clk: clk, account: defaultAccount, region: defaultRegion, senderID: DefaultSenderID,
		queues: map[string]*queue{}, handles: map[string]handleRef{}, counts: map[Op]int{}, called: make(chan struct{})}
}

// URL is the queue URL a queue named name has in this fake.
func (f *Fake) URL(name string) string {
	return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", f.region, f.account, name)
}

// CreateQueue creates a standard queue and returns its URL. It panics on a bad configuration
// (an unknown dead-letter queue, a duplicate name): that is a bug in the test that set it up.
func (f *Fake) CreateQueue(name string, o QueueOptions) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	url := f.URL(name)
	if _, ok := f.queues[url]; ok {
		panic("fakesqs: queue " + name + " exists")
	}
	if o.VisibilityTimeout == 0 {
		o.VisibilityTimeout = DefaultVisibility
	}
	q := &queue{name: name, url: url, arn: fmt.Sprintf("arn:aws:sqs:%s:%s:%s", f.region, f.account, name), opts: o,
		changed: make(chan struct{})}
	if o.DeadLetter != "" {
		dlq, ok := f.queues[f.URL(o.DeadLetter)]
		if !ok {
			panic("fakesqs: dead-letter queue " + o.DeadLetter + " does not exist")
		}
		if o.MaxReceiveCount < 1 {
			panic("fakesqs: a redrive policy needs MaxReceiveCount >= 1")
		}
		q.dlq = dlq
	}
	f.queues[url] = q
	return url
}

// SetFault installs fn as the fault hook (nil removes it).
func (f *Fake) SetFault(fn FaultFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

// Count reports how many calls of op were made (faulted ones included).
func (f *Fake) Count(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// Calls returns a copy of every call so far, in arrival order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// WaitCount blocks until at least n calls of op were made or ctx ends, so a test can wait for a
// consumer's next step without sleeping.
func (f *Fake) WaitCount(ctx context.Context, op Op, n int) error {
	for {
		f.mu.Lock()
		got, ch := f.counts[op], f.called
		f.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d %s calls (have %d): %w", n, op, got, ctx.Err())
		}
	}
}

// WaitCalls blocks until ok holds for the call log or ctx ends. ok gets a copy of the log and
// runs without the fake's lock.
func (f *Fake) WaitCalls(ctx context.Context, ok func([]Call) bool) error {
	for {
		f.mu.Lock()
		calls, ch := append([]Call(nil), f.calls...), f.called
		f.mu.Unlock()
		if ok(calls) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a call: %w", ctx.Err())
		}
	}
}

// Messages returns copies of the messages stored in the queue at url, in send order.
func (f *Fake) Messages(url string) []MessageState {
	now := f.clk.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	q, ok := f.queues[url]
	if !ok {
		return nil
	}
	out := make([]MessageState, 0, len(q.msgs))
	for _, m := range q.msgs {
		out = append(out, MessageState{ID: m.id, Body: m.body, SenderID: m.sender, SentAt: m.sent, ReceiveCount: m.receives,
			Visible: !now.Before(m.visibleAt), VisibleAt: m.visibleAt, ReceiptHandle: m.handle, ReceivedAt: m.receivedAt})
	}
	return out
}

// DeadLetters returns copies of the messages in the dead-letter queue of the queue at url.
func (f *Fake) DeadLetters(url string) []MessageState {
	f.mu.Lock()
	q, ok := f.queues[url]
	var dlq string
	if ok && q.dlq != nil {
		dlq = q.dlq.url
	}
	f.mu.Unlock()
	if dlq == "" {
		return nil
	}
	return f.Messages(dlq)
}

// Send stores a message as SendMessage does, with what the SDK cannot say, and returns its id.
func (f *Fake) Send(ctx context.Context, url, body string, o SendOptions) (string, error) {
	call := Call{Op: OpSendMessage, QueueURL: url}
	fault, err := f.enter(ctx, call)
	if err != nil {
		return "", err
	}
	if o.SenderID == "" {
		o.SenderID = f.senderID
	}
	now := f.clk.Now()
	f.mu.Lock()
	q, err := f.queueLocked(url)
	var id string
	if err == nil {
		if body == "" {
			err = apiError("MissingParameter", "The request must contain the parameter MessageBody.")
		} else {
			f.seq++
			id = fmt.Sprintf("%08d-0000-4000-8000-%012d", f.seq, f.seq)
			q.msgs = append(q.msgs, &message{id: id, body: body, sender: o.SenderID, sent: now, visibleAt: now})
			q.wake()
		}
	}
	f.mu.Unlock()
	if err != nil {
		return "", err
	}
	return id, fault.Err
}

// SendMessage implements the SDK call; the sender is DefaultSenderID (see Send for another).
func (f *Fake) SendMessage(ctx context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	id, err := f.Send(ctx, aws.ToString(in.QueueUrl), aws.ToString(in.MessageBody), SendOptions{})
	if err != nil {
		return nil, err
	}
	return &sqs.SendMessageOutput{MessageId: aws.String(id)}, nil
}

// ReceiveMessage implements the SDK call. Messages come oldest first, which a standard queue
// allows but does not promise. With nothing receivable and a wait, it blocks until a message
// becomes receivable, the wait elapses on the clock, or ctx ends.
func (f *Fake) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	url := aws.ToString(in.QueueUrl)
	fault, err := f.enter(ctx, Call{Op: OpReceiveMessage, QueueURL: url, Input: in})
	if err != nil {
		return nil, err
	}
	// The SDK leaves zero-valued numbers out of the request, so 0 means "not given" here.
	max := in.MaxNumberOfMessages
	if max == 0 {
		max = 1
	}
	if max < 1 || max > MaxMessages {
		return nil, apiError("InvalidParameterValue", fmt.Sprintf("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", max))
	}
	if in.WaitTimeSeconds < 0 || in.WaitTimeSeconds > maxWaitSecs {
		return nil, apiError("InvalidParameterValue", fmt.Sprintf("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", in.WaitTimeSeconds))
	}
	if in.VisibilityTimeout < 0 || in.VisibilityTimeout > maxVisibilitySecs {
		return nil, apiError("InvalidParameterValue", fmt.Sprintf("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.", in.VisibilityTimeout))
	}
	deadline := f.clk.Now().Add(time.Duration(in.WaitTimeSeconds) * time.Second)
	for {
		now := f.clk.Now()
		f.mu.Lock()
		q, err := f.queueLocked(url)
		if err != nil {
			f.mu.Unlock()
			return nil, err
		}
		msgs, next := f.takeLocked(q, int(max), in, now)
		changed := q.changed
		f.mu.Unlock()
		if len(msgs) > 0 || !now.Before(deadline) {
			return &sqs.ReceiveMessageOutput{Messages: msgs}, fault.Err
		}
		wait := deadline.Sub(now)
		if !next.IsZero() && next.Sub(now) < wait {
			wait = next.Sub(now)
		}
		t := f.clk.NewTimer(wait)
		select {
		case <-t.C():
		case <-changed:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("fakesqs: long poll: %w", ctx.Err())
		}
		t.Stop()
	}
}

// takeLocked receives up to max receivable messages, moving to the dead-letter queue those that
// have used up their receives. next is the earliest time an in-flight message becomes
// receivable, zero if none will.
func (f *Fake) takeLocked(q *queue, max int, in *sqs.ReceiveMessageInput, now time.Time) (out []types.Message, next time.Time) {
	vis := q.opts.VisibilityTimeout
	if in.VisibilityTimeout > 0 {
		vis = time.Duration(in.VisibilityTimeout) * time.Second
	}
	kept := q.msgs[:0]
	for _, m := range q.msgs {
		if now.Before(m.visibleAt) || len(out) == max {
			if now.Before(m.visibleAt) && (next.IsZero() || m.visibleAt.Before(next)) {
				next = m.visibleAt
			}
			kept = append(kept, m)
			continue
		}
		if q.dlq != nil && m.receives >= q.opts.MaxReceiveCount {
			// SQS moves the message when it would be delivered once more; it keeps its id, body
			// and sent time, and the old handles name nothing any more.
			m.handle, m.visibleAt = "", now
			q.dlq.msgs = append(q.dlq.msgs, m)
			q.dlq.wake()
			continue
		}
		f.seq++
		m.receives++
		m.handle = fmt.Sprintf("%s%s:%s:%d", handlePrefix, q.name, m.id, f.seq)
		m.receivedAt = now
		m.visibleAt = now.Add(vis)
		f.handles[m.handle] = handleRef{queue: q, id: m.id}
		out = append(out, types.Message{MessageId: aws.String(m.id), ReceiptHandle: aws.String(m.handle), Body: aws.String(m.body),
			Attributes: attributes(m, in)})
		kept = append(kept, m)
	}
	q.msgs = kept
	return out, next
}

func attributes(m *message, in *sqs.ReceiveMessageInput) map[string]string {
	names := map[string]bool{}
	for _, n := range in.MessageSystemAttributeNames {
		names[string(n)] = true
	}
	//lint:ignore SA1019 AttributeNames is deprecated but SQS still honours it, so the fake does too.
	for _, n := range in.AttributeNames {
		names[string(n)] = true
	}
	all := names["All"]
	out := map[string]string{}
	if all || names[string(types.MessageSystemAttributeNameSenderId)] {
		out["SenderId"] = m.sender
	}
	if all || names[string(types.MessageSystemAttributeNameSentTimestamp)] {
		out["SentTimestamp"] = strconv.FormatInt(m.sent.UnixMilli(), 10)
	}
	if all || names[string(types.MessageSystemAttributeNameApproximateReceiveCount)] {
		out["ApproximateReceiveCount"] = strconv.Itoa(m.receives)
	}
	if all || names[string(types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp)] {
		out["ApproximateFirstReceiveTimestamp"] = strconv.FormatInt(m.receivedAt.UnixMilli(), 10)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// DeleteMessage implements the SDK call. As AWS documents, a handle from an earlier receive of
// a message received again since succeeds without deleting anything (SQS says the message
// "might not be deleted"; the fake takes the case a consumer must survive).
func (f *Fake) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	url, h := aws.ToString(in.QueueUrl), aws.ToString(in.ReceiptHandle)
	fault, err := f.enter(ctx, f.handleCall(OpDeleteMessage, url, h, 0, in))
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	err = f.deleteLocked(url, h)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &sqs.DeleteMessageOutput{}, fault.Err
}

func (f *Fake) deleteLocked(url, h string) error {
	q, err := f.queueLocked(url)
	if err != nil {
		return err
	}
	ref, ok := f.handles[h]
	if !ok || ref.queue != q {
		return invalidHandle(h)
	}
	// A handle of a message deleted or moved to the dead-letter queue since, or one a later
	// receive replaced, deletes nothing and still succeeds.
	for i, m := range q.msgs {
		if m.id == ref.id && m.handle == h {
			q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
			break
		}
	}
	return nil
}

// ChangeMessageVisibility implements the SDK call: the timeout counts from now, 0..43200 s, and
// may not take the message past 12 hours since the receive. Only the latest receive's handle
// works.
func (f *Fake) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	url, h := aws.ToString(in.QueueUrl), aws.ToString(in.ReceiptHandle)
	fault, err := f.enter(ctx, f.handleCall(OpChangeMessageVisibility, url, h, in.VisibilityTimeout, in))
	if err != nil {
		return nil, err
	}
	now := f.clk.Now()
	f.mu.Lock()
	err = f.changeLocked(url, h, in.VisibilityTimeout, now)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &sqs.ChangeMessageVisibilityOutput{}, fault.Err
}

func (f *Fake) changeLocked(url, h string, secs int32, now time.Time) error {
	q, err := f.queueLocked(url)
	if err != nil {
		return err
	}
	if secs < 0 || secs > maxVisibilitySecs {
		return apiError("InvalidParameterValue", fmt.Sprintf("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.", secs))
	}
	ref, ok := f.handles[h]
	if !ok || ref.queue != q {
		return invalidHandle(h)
	}
	var m *message
	for _, c := range q.msgs {
		if c.id == ref.id {
			m = c
		}
	}
	if m == nil || m.handle != h {
		return apiError("InvalidParameterValue", "Value "+h+" for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.")
	}
	if !now.Before(m.visibleAt) {
		return &types.MessageNotInflight{Message: aws.String("The message referred to isn't in flight."),
			ErrorCodeOverride: aws.String("AWS.SimpleQueueService.MessageNotInflight")}
	}
	at := now.Add(time.Duration(secs) * time.Second)
	if at.Sub(m.receivedAt) > MaxVisibility {
		return apiError("InvalidParameterValue", fmt.Sprintf("Value %d for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]", secs))
	}
	m.visibleAt = at
	q.wake()
	return nil
}

// GetQueueAttributes implements the SDK call for the attributes the fake keeps.
func (f *Fake) GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	url := aws.ToString(in.QueueUrl)
	fault, err := f.enter(ctx, Call{Op: OpGetQueueAttributes, QueueURL: url, Input: in})
	if err != nil {
		return nil, err
	}
	now := f.clk.Now()
	f.mu.Lock()
	q, err := f.queueLocked(url)
	var all map[string]string
	if err == nil {
		all = q.attributes(now)
	}
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range in.AttributeNames {
		if n == types.QueueAttributeNameAll {
			out = all
			break
		}
		if v, ok := all[string(n)]; ok {
			out[string(n)] = v
		}
	}
	return &sqs.GetQueueAttributesOutput{Attributes: out}, fault.Err
}

// attributes runs under the fake's lock.
func (q *queue) attributes(now time.Time) map[string]string {
	visible, inflight := 0, 0
	for _, m := range q.msgs {
		if now.Before(m.visibleAt) {
			inflight++
		} else {
			visible++
		}
	}
	a := map[string]string{
		"QueueArn":                              q.arn,
		"VisibilityTimeout":                     strconv.Itoa(int(q.opts.VisibilityTimeout / time.Second)),
		"ApproximateNumberOfMessages":           strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inflight),
		"ApproximateNumberOfMessagesDelayed":    "0",
		"DelaySeconds":                          "0",
		"MaximumMessageSize":                    "262144",
		"MessageRetentionPeriod":                "345600",
		"ReceiveMessageWaitTimeSeconds":         "0",
	}
	if q.dlq != nil {
		rp, _ := json.Marshal(struct {
			DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			MaxReceiveCount     int    `json:"maxReceiveCount"`
		}{q.dlq.arn, q.opts.MaxReceiveCount})
		a["RedrivePolicy"] = string(rp)
	}
	switch {
	case q.opts.KMSKeyID != "":
		a["KmsMasterKeyId"] = q.opts.KMSKeyID
		a["KmsDataKeyReusePeriodSeconds"] = "300"
		a["SqsManagedSseEnabled"] = "false"
	case q.opts.SSE:
		a["SqsManagedSseEnabled"] = "true"
	default:
		a["SqsManagedSseEnabled"] = "false"
	}
	return a
}

// PurgeQueue implements the SDK call: every message goes, in flight or not.
func (f *Fake) PurgeQueue(ctx context.Context, in *sqs.PurgeQueueInput, _ ...func(*sqs.Options)) (*sqs.PurgeQueueOutput, error) {
	url := aws.ToString(in.QueueUrl)
	fault, err := f.enter(ctx, Call{Op: OpPurgeQueue, QueueURL: url, Input: in})
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	q, err := f.queueLocked(url)
	if err == nil {
		q.msgs = nil
	}
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &sqs.PurgeQueueOutput{}, fault.Err
}

// handleCall describes a call naming a receipt handle, resolving the message it names.
func (f *Fake) handleCall(op Op, url, h string, secs int32, in any) Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Call{Op: op, QueueURL: url, ReceiptHandle: h, MessageID: f.handles[h].id, VisibilityTimeout: secs, Input: in}
}

// begin records a call and asks the fault hook about it, outside the lock.
// enter records a call and asks the fault hook about it: an error before the effect, or a
// context that has ended (the SDK sends nothing then), is returned; an error after the effect
// comes back in the Fault for the caller to return once it has acted.
func (f *Fake) enter(ctx context.Context, c Call) (Fault, error) {
	fault := f.begin(c)
	if fault.Err != nil && !fault.AfterEffect {
		return fault, fault.Err
	}
	if err := ctx.Err(); err != nil {
		return fault, err
	}
	return fault, nil
}

func (f *Fake) begin(c Call) Fault {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.counts[c.Op]++
	close(f.called)
	f.called = make(chan struct{})
	hook := f.fault
	f.mu.Unlock()
	if hook == nil {
		return Fault{}
	}
	return hook(c)
}

func (f *Fake) queueLocked(url string) (*queue, error) {
	q, ok := f.queues[url]
	if !ok {
		// The SDK reports SQS's query-compatible code, as it does for AWS.
		return nil, &types.QueueDoesNotExist{Message: aws.String("The specified queue does not exist."),
			ErrorCodeOverride: aws.String("AWS.SimpleQueueService.NonExistentQueue")}
	}
	return q, nil
}

func (q *queue) wake() {
	close(q.changed)
	q.changed = make(chan struct{})
}

func invalidHandle(h string) error {
	return &types.ReceiptHandleIsInvalid{Message: aws.String("The input receipt handle \"" + h + "\" is not a valid receipt handle.")}
}

func apiError(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultClient}
}
