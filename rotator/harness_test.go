package rotator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/amazon"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The harness is the real vault.Store over the project's in-memory Secrets Manager, Amazon's
// model behind a thin adapter speaking the rotator's interfaces, and messages through the real
// Dispatcher: what the tests assert is what the daemon would leave in AWS.

const (
	clientID = "amzn1.application-oa2-client.test"
	appID    = "amzn1.sp.solution.app"
	secretID = "lwa/test"
	// amazonSender is the SQS sender id the allow-list tests accept.
	amazonSender = "AIDAAMAZON"
	// rejectedRetry is the Dispatcher's delay for a refused message.
	rejectedRetry = 15 * time.Minute
)

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// The probe is far off here, so these tests count only the rotation's own calls; probe_test.go
	// tests the probe at its production interval.
	testSettings = Settings{RenewBefore: 30 * day, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
		ProbeEvery: 10 * 365 * day, CanaryEvery: 7 * day}
)

// setup is the world a test starts in.
type setup struct {
	expiry, prevExpiry time.Time           // the current record's expiries (zero: none stored)
	state              vault.RotationState // the daemon's tags (Request is written as `rotate` does)
	rawRequestAt       string              // a request-at tag written verbatim (an unreadable request)
	otherTags          int                 // tags on the secret that are not the daemon's
	unknownToAmazon    bool                // LWA does not know the stored current secret
	requestPoll        time.Duration
	settings           *Settings // nil: testSettings
	canary             bool      // the application is a canary
	// amazonLimitOff: Amazon accepts back-to-back rotate calls (the replica tests: one call a
	// minute must not be what keeps replicas apart).
	amazonLimitOff bool
}

type harness struct {
	t     *testing.T
	clk   *fakeclock.Fake
	sm    *fakesm.SM
	store *vault.Store
	amzn  *fakeAmazon
	obs   *counter
	logs  *observer.ObservedLogs
	log   *zap.Logger
	old   secret.Value
	poll  time.Duration
	set   Settings
	app   App
	r     *Rotator
	d     *notifications.Dispatcher

	smFault atomic.Pointer[func(op, secretID string) fakesm.Fault]
}

func newHarness(t *testing.T, expiry time.Time) *harness {
	t.Helper()
	return newHarnessWith(t, setup{expiry: expiry})
}

func newHarnessWith(t *testing.T, s setup) *harness {
	t.Helper()
	ctx := context.Background()
	core, logs := observer.New(zap.DebugLevel)
	h := &harness{t: t, clk: fakeclock.New(t0), obs: newCounter(), logs: logs, log: zap.New(core), poll: s.requestPoll,
		old: secret.New("amzn1.oa2-cs.v1.oldsecretoldsecretoldsecret"), set: testSettings,
		app: App{Name: "app", ClientID: clientID, Region: spapi.Region("na"), SecretID: secretID, ApplicationID: appID, Canary: s.canary}}
	if s.settings != nil {
		h.set = *s.settings
	}
	h.sm = fakesm.New(fakesm.Options{Clock: h.clk, Fault: func(op, id string) fakesm.Fault {
		if f := h.smFault.Load(); f != nil {
			return (*f)(op, id)
		}
		return fakesm.Fault{}
	}})
	h.store = &vault.Store{SM: h.sm, Log: h.log}
	if _, err := h.store.Create(ctx, secretID, "", vault.Record{ClientID: clientID, ClientSecret: h.old, ExpiresAt: s.expiry,
		PreviousExpiresAt: s.prevExpiry}); err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	copy(key[:], t.Name())
	rules := amazon.Rules{}
	if s.amazonLimitOff {
		rules.RotateInterval = time.Nanosecond
	}
	model := amazon.New(rules, amazon.IDsFrom(rand.NewChaCha8(key)))
	registered := h.old
	if s.unknownToAmazon {
		registered = secret.New("amzn1.oa2-cs.v1.asamazonknowsitasamazonknowsit")
	}
	if err := model.Register(t0, amazon.Application{ClientID: clientID, ApplicationID: appID, Secret: registered,
		SecretExpiresAt: s.expiry, NewSecretQueueURL: "https://sqs.example/new", ExpiryQueueURL: "https://sqs.example/expiry"}); err != nil {
		t.Fatal(err)
	}
	h.amzn = &fakeAmazon{clk: h.clk, model: model}
	if err := h.store.SaveChanges(ctx, secretID, vault.RotationState{}, s.state); err != nil {
		t.Fatal(err)
	}
	if !s.state.Request.At.IsZero() {
		h.request(s.state.Request.At)
	}
	if s.rawRequestAt != "" {
		h.tag(types.Tag{Key: aws.String(vault.TagRequestAt), Value: aws.String(s.rawRequestAt)})
	}
	if s.otherTags > 0 {
		var tags []types.Tag
		for i := range s.otherTags {
			tags = append(tags, types.Tag{Key: aws.String(fmt.Sprintf("team:%02d", i)), Value: aws.String("x")})
		}
		h.tag(tags...)
	}
	h.sm.ResetCalls()
	h.restart()
	t.Cleanup(func() { h.assertNoSecretLogged(t) })
	return h
}

// restart replaces the process: a new Rotator and Dispatcher over the same AWS; the in-memory
// state (the manual flag, the vault's version cache) is gone.
func (h *harness) restart() {
	h.t.Helper()
	h.store = &vault.Store{SM: h.sm, Log: h.log}
	r, err := New(Options{
		Apps:     []App{h.app},
		Settings: h.set, Vault: h.store, LWA: h.amzn, SPAPI: h.amzn, Clock: h.clk, Log: h.log, Observer: h.obs,
		Rand: func() float64 { return 0.5 }, RequestPoll: h.poll,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.r = r
	h.d = h.dispatcher(nil)
}

func (h *harness) dispatcher(allowed []string) *notifications.Dispatcher {
	return &notifications.Dispatcher{Receiver: h.r, Observer: h.obs, Log: h.log, AllowedSenderIDs: allowed,
		RejectedRetry: rejectedRetry, RetryMin: time.Minute, RetryMax: time.Hour, Rand: func() float64 { return 0.5 }, Clock: h.clk}
}

// running starts the Rotator's Run loop and returns the context it runs under; the test's
// cleanup stops it and checks that it ended cleanly.
func (h *harness) running(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return ctx
}

// refuseListing answers ListSecrets and BatchGetSecretValue as IAM does when the listing grant
// was left out of the policy.
func refuseListing(op, _ string) fakesm.Fault {
	if op == fakesm.OpListSecrets || op == fakesm.OpBatchGetSecretValue {
		return fakesm.Fault{Err: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}}
	}
	return fakesm.Fault{}
}

// handle delivers one message as the consumer would, follow-up work included.
func (h *harness) handle(m notifications.Message) notifications.Result {
	res := h.d.Handle(context.Background(), m)
	if res.Then != nil {
		res.Then(context.Background())
	}
	return res
}

func (h *harness) tag(tags ...types.Tag) {
	h.t.Helper()
	if _, err := h.sm.TagResource(context.Background(), &sm.TagResourceInput{SecretId: aws.String(secretID), Tags: tags}); err != nil {
		h.t.Fatal(err)
	}
}

// request writes an operator's rotation request, as lwa-rotator rotate does.
func (h *harness) request(at time.Time) {
	h.t.Helper()
	tags, err := vault.RequestTags(vault.RotationRequest{At: at, By: "ops@host"})
	if err != nil {
		h.t.Fatal(err)
	}
	h.tag(tags...)
}

// failVault makes the next n calls of op fail as the service's internal error.
func (h *harness) failVault(op string, n int) { h.failVaultAfter(op, n, false) }

// failVaultAfter is failVault; applied makes each failed call take effect first (a response
// lost after the service acted).
func (h *harness) failVaultAfter(op string, n int, applied bool) {
	left := int32(n)
	f := func(o, _ string) fakesm.Fault {
		if o == op && atomic.AddInt32(&left, -1) >= 0 {
			return fakesm.Fault{Err: &types.InternalServiceError{Message: aws.String("injected")}, Applied: applied}
		}
		return fakesm.Fault{}
	}
	h.smFault.Store(&f)
}

// world is what AWS holds, read without counting as the daemon's calls.
type world struct {
	cur, prev   vault.Version
	pending     bool // a version carries AWSPENDING but not AWSCURRENT
	state       vault.RotationState
	daemonTags  int // lwa-rotator:* tags
	allVersions map[string][]string
}

func (h *harness) world() world {
	h.t.Helper()
	labels := h.sm.Versions(secretID)
	w := world{allVersions: labels, pending: vault.PendingVersion(labels) != ""}
	read := func(stage string) vault.Version {
		for id, st := range labels {
			for _, s := range st {
				if s == stage {
					v, _ := h.sm.Value(secretID, id)
					rec, err := vault.Decode([]byte(v), vault.FormatDefault)
					if err != nil {
						h.t.Fatalf("decoding version %s: %v", id, err)
					}
					return vault.Version{ID: id, Record: rec, Stages: st}
				}
			}
		}
		return vault.Version{}
	}
	w.cur, w.prev = read(vault.StageCurrent), read(vault.StagePrevious)
	var tags []types.Tag
	for k, v := range h.sm.Tags(secretID) {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		if strings.HasPrefix(k, "lwa-rotator:") {
			w.daemonTags++
		}
	}
	st, err := vault.StateFromTags(tags)
	if err != nil {
		h.t.Fatalf("reading the daemon's tags: %v", err)
	}
	w.state = st
	return w
}

func (h *harness) status() Status { return h.r.Snapshot()[0] }

// mint has Amazon issue a genuine secret now (so LWA accepts it) and returns it with a
// new-secret message claiming the given expiries, as a delayed or reordered delivery would.
func (h *harness) mint(id string, expires, oldExpires time.Time) (secret.Value, notifications.Message) {
	h.t.Helper()
	v := h.amzn.issue(h.t, h.clk, h.old)
	body := amazon.NewSecretBody(amazon.Meta{ApplicationID: appID, SubscriptionID: "sub", NotificationID: id, Time: h.clk.Now()},
		clientID, v, expires, oldExpires)
	return v, message(id, body)
}

// planted is a new-secret message for a secret Amazon never issued.
func (h *harness) planted(id string, expires time.Time) notifications.Message {
	body := amazon.NewSecretBody(amazon.Meta{ApplicationID: appID, SubscriptionID: "sub", NotificationID: id, Time: h.clk.Now()},
		clientID, secret.New("amzn1.oa2-cs.v1.plantedplantedplantedplanted"), expires, t0.Add(7*day))
	return message(id, body)
}

func (h *harness) expiry(id, client, application string, expires time.Time) notifications.Message {
	return message(id, amazon.ExpiryBody(amazon.Meta{ApplicationID: application, SubscriptionID: "sub", NotificationID: id,
		Time: h.clk.Now()}, client, expires))
}

// delivered is the new-secret message of the rotator's latest accepted rotate call.
func (h *harness) delivered() (secret.Value, notifications.Message) {
	h.t.Helper()
	n, ok := h.amzn.lastNotice()
	if !ok {
		h.t.Fatal("Amazon sent no new-secret notification")
	}
	s, _ := h.amzn.newest()
	return s.Value, message(n.NotificationID, n.Body)
}

func message(id string, body []byte) notifications.Message {
	return notifications.Message{ID: "m-" + id, Body: body, ReceiveCount: 1, SenderID: amazonSender}
}

func (h *harness) assertNoSecretLogged(t *testing.T) {
	t.Helper()
	for _, e := range h.logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, "oa2-cs.v1.") || strings.Contains(line, "Atc|") {
			t.Errorf("a log line carries a secret value: %s", line)
		}
	}
}

// fakeAmazon is LWA and the rotate endpoint over Amazon's model, answering with the errors the
// real clients return. Faults are injected per operation; hooks run without the lock held.
type fakeAmazon struct {
	clk   clock.Clock
	mu    sync.Mutex
	model *amazon.Model

	tokens, tokenOK      int // token calls, and those that returned a token
	rotates, rotateOK    int // rotate calls, and those that returned success
	tokenErr, rotateErr  error
	rotateErrApplied     bool   // the rotate fault hits after Amazon minted (a lost response)
	beforeToken, onToken func() // run once, before / after a successful token
	notices              []amazon.Notice
}

func (f *fakeAmazon) Token(_ context.Context, id string, sec secret.Value) (spapi.Token, error) {
	f.mu.Lock()
	hook := f.beforeToken
	f.beforeToken = nil
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.mu.Lock()
	f.tokens++
	if err := f.tokenErr; err != nil {
		f.mu.Unlock()
		return spapi.Token{}, err
	}
	now := f.clk.Now()
	tok, err := f.model.Token(now, id, sec)
	if err != nil {
		f.mu.Unlock()
		return spapi.Token{}, &spapi.Error{API: "lwa", Op: "token", StatusCode: http.StatusUnauthorized, Code: "invalid_client",
			Message: "Client authentication failed", Kind: spapi.ErrInvalidClient}
	}
	f.tokenOK++
	after := f.onToken
	f.onToken = nil
	f.mu.Unlock()
	if after != nil {
		after()
	}
	return spapi.Token{AccessToken: secret.New(tok.Value), ExpiresIn: tok.ExpiresAt.Sub(now), Scope: spapi.Scope}, nil
}

func (f *fakeAmazon) RotateClientSecret(_ context.Context, _ string, _ spapi.Region, tok secret.Value) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rotates++
	reqID := fmt.Sprintf("req-%d", f.rotates)
	if f.rotateErr != nil && !f.rotateErrApplied {
		return "", f.rotateErr
	}
	r, err := f.model.Rotate(f.clk.Now(), tok.Reveal())
	switch {
	case errors.Is(err, amazon.ErrNotEnrolled):
		return "", &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusBadRequest, Code: "InvalidInput",
			Message: "Application is not enrolled for rotation notification", RequestID: reqID, Kind: spapi.ErrNotEnrolled}
	case errors.Is(err, amazon.ErrThrottled):
		return "", &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusTooManyRequests, Code: "QuotaExceeded",
			RequestID: reqID, RetryAfter: time.Minute, Kind: spapi.ErrThrottled}
	case err != nil:
		return "", &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusForbidden, Code: "Unauthorized",
			RequestID: reqID, Kind: spapi.ErrUnauthorized}
	}
	f.notices = append(f.notices, r.Notice)
	if f.rotateErr != nil {
		return "", f.rotateErr
	}
	f.rotateOK++
	return reqID, nil
}

// issue mints a secret outside the rotator's calls (another replica's, or a delayed one's),
// moving the fake clock past the model's rotate interval if it must.
func (f *fakeAmazon) issue(t *testing.T, clk *fakeclock.Fake, with secret.Value) secret.Value {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, _ := f.model.State(clientID); st.RotateCalls > 0 && clk.Now().Before(st.LastRotate.Add(amazon.RotateInterval)) {
		clk.Set(st.LastRotate.Add(amazon.RotateInterval))
	}
	tok, err := f.model.Token(clk.Now(), clientID, with)
	if err != nil {
		t.Fatalf("minting: %v", err)
	}
	r, err := f.model.Rotate(clk.Now(), tok.Value)
	if err != nil {
		t.Fatalf("minting: %v", err)
	}
	return r.Secret.Value
}

func (f *fakeAmazon) lastNotice() (amazon.Notice, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.notices) == 0 {
		return amazon.Notice{}, false
	}
	return f.notices[len(f.notices)-1], true
}

func (f *fakeAmazon) newest() (amazon.Secret, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.model.Newest(clientID)
}

// calls is the number of rotate calls Amazon accepted.
func (f *fakeAmazon) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rotateOK
}

func (f *fakeAmazon) counts() (tokens, rotates int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens, f.rotates
}

func (f *fakeAmazon) fail(tokenErr, rotateErr error, applied bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenErr, f.rotateErr, f.rotateErrApplied = tokenErr, rotateErr, applied
}

// counter counts rotation results, notification outcomes and the request watch's reads.
type counter struct {
	mu    sync.Mutex
	rot   map[Result]int
	notes map[notifications.Outcome]int
	reads []watchRead
}

func newCounter() *counter {
	return &counter{rot: map[Result]int{}, notes: map[notifications.Outcome]int{}}
}

func (c *counter) Rotation(_ string, r Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rot[r]++
}

// watchRead is one read the request watch reported.
type watchRead struct {
	at time.Time
	ok bool
}

func (c *counter) RequestWatchRead(at time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads = append(c.reads, watchRead{at: at, ok: err == nil})
}

func (c *counter) watchReads() []watchRead {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]watchRead(nil), c.reads...)
}

func (c *counter) Notification(_, _ string, o notifications.Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notes[o]++
}

func (c *counter) rotations(r Result) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rot[r]
}

func (c *counter) outcomes(o notifications.Outcome) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notes[o]
}

// waitFor polls cond with a bound: the state a goroutine reaches, never a fixed sleep.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// returnsWithin fails the test unless fn returns within a bounded wait.
func returnsWithin(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return while an application was busy", what)
	}
}
