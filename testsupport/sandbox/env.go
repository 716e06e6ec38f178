// Package sandbox builds a complete local world for lwa-rotator: moto for SQS, Secrets Manager and
// KMS, the SP-API/LWA simulator, one application with a secret close to expiry, and a
// configuration file pointing the daemon at all of it. The sandbox command and the integration
// tests share it.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/internal/operator/doctor"
	"github.com/spapi-tools/lwa-rotator/testsupport/awstest"
	"github.com/spapi-tools/lwa-rotator/testsupport/spapisim"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// EnvOptions shape a sandbox world.
type EnvOptions struct {
	// AWSEndpoint is a running moto (or a proxy in front of it).
	AWSEndpoint string
	// RealAWS, when set, replaces moto: resources are made in the account it points at, and
	// Destroy removes them.
	RealAWS *aws.Config
	Clock   clock.Clock
	Log     *zap.Logger
	// Dir receives the configuration file; empty makes a temporary directory.
	Dir string
	// Name distinguishes resources when several worlds share one moto.
	Name string
	// SharedQueue uses one queue for both notification types.
	SharedQueue bool
	// SecretLifetimeLeft is how long the first secret has to live (default 20 days: inside the
	// default 30-day renewal window, so an expiry notice makes rotation due at once).
	SecretLifetimeLeft time.Duration
	// ExtraConfig is appended to the generated configuration file (top-level keys only).
	ExtraConfig string
	// AppConfig is added to every application's entry of the generated file: keys at the
	// application's level, written unindented (a webhook block, say).
	AppConfig string
	// Reshape, when set, rewrites every body the simulator delivers (another version, an SNS
	// envelope), as Amazon's format drift or a user's fan-out would.
	Reshape func(body string) string
	// Timings of the generated configuration; zero keeps the defaults shown.
	AwaitDeadline      time.Duration // 2m
	VisibilityTimeout  time.Duration // 60s
	RejectedRetry      time.Duration // 15m
	RetryMin           time.Duration // 1m
	DeadLetterInterval time.Duration // 1m
	// MaxReceiveCount is the queues' redrive limit (default 10: what doctor asks for).
	MaxReceiveCount int
	// RotateInterval is the simulator's rate limit per application (default 1m), and the
	// daemon's own (endpoints.rotateInterval).
	RotateInterval time.Duration
	// SimRotateInterval, when set, is the simulator's limit instead; negative lifts it, so that
	// every rotate call a daemon makes is accepted and counted (spapisim.Options.RotateInterval).
	SimRotateInterval time.Duration
	// ClaimLease is how long a replica's claim on a due rotation lasts (default 5m, the product's).
	ClaimLease time.Duration
	// Apps is how many applications the world has (default 1); the first is also the Env's own
	// AppName, ClientID, SecretID and FirstSecret.
	Apps int
	// Canary adds one more application, demo-canary, marked canary: true (a draft application
	// rotated every canaryEvery through the production path).
	Canary bool
	// SkipSecret leaves the secrets uncreated (for seed): SecretID is the name the configuration
	// names, and FirstSecret is still the secret the simulator accepts.
	SkipSecret bool
	// WindowOpensIn, when set, writes a rotationWindow that opens at the first whole minute at
	// least this long after NewEnv (Env.WindowOpensAt) and stays open WindowLength, so the
	// rotation that is due at start (the secret expires within renewBefore) waits for it. Keep
	// it under SecretLifetimeLeft minus the window's 7-day safety margin, or nothing waits.
	WindowOpensIn time.Duration
}

// WindowLength is how long the window EnvOptions.WindowOpensIn writes stays open: the least
// check-config does not warn about.
const WindowLength = 2 * time.Hour

func (o *EnvOptions) defaults() {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Name == "" {
		o.Name = "sandbox-" + randHex(4)
	}
	if o.SecretLifetimeLeft == 0 {
		o.SecretLifetimeLeft = 20 * 24 * time.Hour
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.AwaitDeadline, 2*time.Minute)
	def(&o.VisibilityTimeout, time.Minute)
	def(&o.RejectedRetry, 15*time.Minute)
	def(&o.RetryMin, time.Minute)
	def(&o.RotateInterval, time.Minute)
	def(&o.ClaimLease, 5*time.Minute)
	def(&o.DeadLetterInterval, time.Minute)
	if o.MaxReceiveCount == 0 {
		o.MaxReceiveCount = 10
	}
	if o.Apps <= 0 {
		o.Apps = 1
	}
}

// App is one application of the world.
type App struct {
	Name, ClientID, AppID, SecretID string
	FirstSecret                     secret.Value
	FirstExpiry                     time.Time
	Canary                          bool
}

// Env is a running sandbox world.
type Env struct {
	Sim         *spapisim.Sim
	SimURL      string
	AWSEndpoint string
	AWS         awstest.Clients
	Store       *vault.Store
	KMSKeyARN   string
	ExpiryQueue string
	SecretQueue string
	DLQs        []string
	SecretID    string
	ClientID    string
	AppName     string
	AppID       string
	ConfigPath  string
	FirstSecret secret.Value
	// WindowOpensAt is when the rotation window of EnvOptions.WindowOpensIn opens (zero without).
	WindowOpensAt time.Time
	// Applications lists every application, the first one included.
	Applications []App

	srv  *http.Server
	real *aws.Config
	opts EnvOptions
}

// NewEnv creates the resources and starts the simulator on a loopback port.
func NewEnv(ctx context.Context, o EnvOptions) (*Env, error) {
	o.defaults()
	e := &Env{opts: o, AWSEndpoint: o.AWSEndpoint, real: o.RealAWS}
	if o.RealAWS != nil {
		e.AWS = awstest.ClientsFrom(*o.RealAWS)
	} else {
		e.AWS = awstest.NewClients(o.AWSEndpoint, nil)
	}
	e.Store = &vault.Store{SM: e.AWS.SecretsManager, Format: vault.FormatDefault, Log: o.Log}

	key, err := e.AWS.KMS.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("lwa-rotator sandbox " + o.Name)})
	if err != nil {
		return nil, fmt.Errorf("creating the sandbox KMS key: %w", err)
	}
	e.KMSKeyARN = aws.ToString(key.KeyMetadata.Arn)
	if err := e.allowAmazonOnKey(ctx); err != nil {
		return nil, err
	}

	if e.ExpiryQueue, err = e.CreateQueue(ctx, o.Name+"-expiry"); err != nil {
		return nil, err
	}
	e.SecretQueue = e.ExpiryQueue
	if !o.SharedQueue {
		if e.SecretQueue, err = e.CreateQueue(ctx, o.Name+"-new-secret"); err != nil {
			return nil, err
		}
	}

	var deliver spapisim.Deliverer = spapisim.SQSDeliverer{SQS: e.AWS.SQS}
	if o.Reshape != nil {
		deliver = reshaped{deliver, o.Reshape}
	}
	simInterval := o.RotateInterval
	if o.SimRotateInterval != 0 {
		simInterval = o.SimRotateInterval
	}
	e.Sim = spapisim.New(spapisim.Options{Clock: o.Clock, Deliver: deliver, Log: o.Log, RotateInterval: simInterval})
	now := o.Clock.Now()
	n := o.Apps
	if o.Canary {
		n++
	}
	for i := range n {
		a := App{Name: "demo-app", ClientID: "amzn1.application-oa2-client." + randHex(16), AppID: "amzn1.sp.solution." + randHex(16),
			FirstSecret: secret.New("amzn1.oa2-cs.v1." + randHex(32)), FirstExpiry: now.Add(o.SecretLifetimeLeft).UTC().Truncate(time.Millisecond)}
		switch {
		case i == o.Apps:
			a.Name, a.Canary = "demo-canary", true
		case i > 0:
			a.Name = fmt.Sprintf("demo-app-%d", i+1)
		}
		a.SecretID = "lwa-rotator/" + o.Name + "/" + a.Name
		if !o.SkipSecret {
			first := vault.Record{ClientID: a.ClientID, ClientSecret: a.FirstSecret, ExpiresAt: a.FirstExpiry}
			if a.SecretID, err = e.Store.Create(ctx, a.SecretID, e.KMSKeyARN, first); err != nil {
				return nil, fmt.Errorf("creating the sandbox secret: %w", err)
			}
		}
		if err := e.Sim.Register(spapisim.App{ClientID: a.ClientID, ApplicationID: a.AppID, Secret: a.FirstSecret,
			SecretExpiresAt: a.FirstExpiry, ExpiryQueueURL: e.ExpiryQueue, NewSecretQueueURL: e.SecretQueue}); err != nil {
			return nil, fmt.Errorf("registering the sandbox application: %w", err)
		}
		e.Applications = append(e.Applications, a)
	}
	first := e.Applications[0]
	e.AppName, e.ClientID, e.AppID, e.SecretID, e.FirstSecret = first.Name, first.ClientID, first.AppID, first.SecretID, first.FirstSecret
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the simulator: %w", err)
	}
	e.SimURL = "http://" + ln.Addr().String()
	e.srv = &http.Server{Handler: e.Sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = e.srv.Serve(ln) }()

	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "lwa-rotator-sandbox-"); err != nil {
			return nil, fmt.Errorf("making the sandbox directory: %w", err)
		}
	}
	e.ConfigPath = filepath.Join(dir, o.Name+".yaml")
	extra := o.ExtraConfig
	if o.WindowOpensIn > 0 {
		var block string
		e.WindowOpensAt, block = rotationWindow(now, o.WindowOpensIn)
		extra = block + extra
	}
	if err := os.WriteFile(e.ConfigPath, []byte(e.configYAML()+extra), 0o600); err != nil {
		return nil, fmt.Errorf("writing the sandbox configuration: %w", err)
	}
	return e, nil
}

// configYAML is the daemon configuration for this world. It holds no secret.
func (e *Env) configYAML() string {
	o := e.opts
	var apps strings.Builder
	for _, a := range e.Applications {
		fmt.Fprintf(&apps, "  - name: %s\n    clientId: %s\n    region: na\n    secretId: %s\n    applicationId: %s\n", a.Name, a.ClientID, a.SecretID, a.AppID)
		if a.Canary {
			apps.WriteString("    canary: true\n")
		}
		for _, line := range strings.Split(strings.TrimRight(o.AppConfig, "\n"), "\n") {
			if line != "" {
				apps.WriteString("    " + line + "\n")
			}
		}
	}
	return fmt.Sprintf(`# Generated by lwa-rotator-sandbox: everything on loopback, no AWS account involved.
logLevel: info
renewBefore: 30d
awaitDeadline: %s
retry: {min: %s, max: 1h}
claimLease: %s
kmsKeyId: %s
allowInsecureLoopback: true
queues:
  expiry: %s
  newSecret: %s
  visibilityTimeout: %s
  rejectedRetry: %s
  deadLetterInterval: %s
endpoints:
  lwa: %s/auth/o2/token
  spapi: {na: %s, eu: %s, fe: %s}
  rotateInterval: %s
applications:
%s`, o.AwaitDeadline, o.RetryMin, o.ClaimLease, e.KMSKeyARN, e.ExpiryQueue, e.SecretQueue, o.VisibilityTimeout, o.RejectedRetry, o.DeadLetterInterval, e.SimURL, e.SimURL, e.SimURL, e.SimURL, o.RotateInterval, apps.String())
}

// rotationWindow is a rotationWindow block, in UTC, that opens at the first whole minute at least
// in after start (windows are read to the minute) and stays open WindowLength. The range is
// written on the opening's own weekday; one that runs past midnight ends before its start time,
// which the syntax reads as crossing into the next day.
func rotationWindow(start time.Time, in time.Duration) (time.Time, string) {
	opens := start.UTC().Add(in)
	if t := opens.Truncate(time.Minute); !t.Equal(opens) {
		opens = t.Add(time.Minute)
	}
	closes := opens.Add(WindowLength)
	open := fmt.Sprintf("%s %s-%s", opens.Weekday().String()[:3], opens.Format("15:04"), closes.Format("15:04"))
	return opens, fmt.Sprintf("rotationWindow:\n  timeZone: UTC\n  open: [%q]\n", open)
}

// allowAmazonOnKey gives the key the policy deploy/iam/kms-key-policy.json asks for, as far as
// the sandbox needs it: the account administers the key, Amazon's account encrypts through SQS.
func (e *Env) allowAmazonOnKey(ctx context.Context) error {
	account := strings.Split(e.KMSKeyARN, ":")[4]
	root := doctor.Statement{Sid: "EnableRootAccountAdministration", Effect: "Allow",
		Principal: map[string]string{"AWS": "arn:aws:iam::" + account + ":root"}, Action: []string{"kms:*"}, Resource: "*"}
	policy := doctor.PolicyDocument(root, doctor.AmazonKeyStatement(strings.Split(e.KMSKeyARN, ":")[3]))
	if _, err := e.AWS.KMS.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(e.KMSKeyARN), PolicyName: aws.String("default"),
		Policy: aws.String(policy)}); err != nil {
		return fmt.Errorf("setting the sandbox key's policy: %w", err)
	}
	return nil
}

// retention14d is SQS's longest retention: an unread new secret outlives the old one.
const retention14d = "1209600"

// CreateQueue makes an SSE-KMS queue that Amazon's account may send to, with a dead-letter
// queue after MaxReceiveCount receives: the set-up `lwa-rotator doctor` passes. A name ending in
// .fifo makes a FIFO queue (and a FIFO dead-letter queue), which Amazon cannot deliver to.
func (e *Env) CreateQueue(ctx context.Context, name string) (string, error) {
	base, fifo := strings.CutSuffix(name, ".fifo")
	suffix := ""
	if fifo {
		suffix = ".fifo"
	}
	dlqAttrs := map[string]string{"KmsMasterKeyId": e.KMSKeyARN, "MessageRetentionPeriod": retention14d}
	if fifo {
		dlqAttrs["FifoQueue"] = "true"
	}
	dlq, err := e.AWS.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(base + "-dlq" + suffix), Attributes: dlqAttrs})
	if err != nil {
		return "", fmt.Errorf("creating queue %s-dlq: %w", name, err)
	}
	e.DLQs = append(e.DLQs, aws.ToString(dlq.QueueUrl))
	attrs, err := e.AWS.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil {
		return "", fmt.Errorf("reading queue %s-dlq: %w", name, err)
	}
	qAttrs := map[string]string{
		"KmsMasterKeyId":         e.KMSKeyARN,
		"VisibilityTimeout":      "60",
		"MessageRetentionPeriod": retention14d,
		"RedrivePolicy":          fmt.Sprintf(`{"deadLetterTargetArn":"%s","maxReceiveCount":"%d"}`, attrs.Attributes["QueueArn"], e.opts.MaxReceiveCount),
	}
	if fifo {
		qAttrs["FifoQueue"] = "true"
	}
	q, err := e.AWS.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: qAttrs})
	if err != nil {
		return "", fmt.Errorf("creating queue %s: %w", name, err)
	}
	out, err := e.AWS.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil {
		return "", fmt.Errorf("reading queue %s: %w", name, err)
	}
	policy := doctor.PolicyDocument(doctor.AmazonQueueStatement(out.Attributes["QueueArn"]))
	if _, err := e.AWS.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: q.QueueUrl,
		Attributes: map[string]string{"Policy": policy}}); err != nil {
		return "", fmt.Errorf("setting the policy of queue %s: %w", name, err)
	}
	return aws.ToString(q.QueueUrl), nil
}

// AWSConfig is an SDK configuration aimed at this world's AWS endpoint.
func (e *Env) AWSConfig() aws.Config {
	if e.real != nil {
		return e.real.Copy()
	}
	cfg := awstest.Config(nil)
	cfg.BaseEndpoint = aws.String(e.AWSEndpoint)
	return cfg
}

// Environ lists the variables that point an independently started `lwa-rotator run` at this world.
func (e *Env) Environ() []string {
	var aws []string
	if e.real == nil {
		// A profile from the caller's environment must not steer the daemon away from moto.
		aws = []string{"AWS_ENDPOINT_URL=" + e.AWSEndpoint, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
			"AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_DEFAULT_PROFILE=", "AWS_REGION=" + awstest.Region}
	}
	return append(aws,
		"LWA_ROTATOR_LWA_ENDPOINT="+e.SimURL+"/auth/o2/token",
		"LWA_ROTATOR_SPAPI_ENDPOINT="+e.SimURL,
		"LWA_ROTATOR_ALLOW_INSECURE_LOOPBACK=true",
	)
}

// QueueDepth is the number of visible plus in-flight messages on a queue.
func (e *Env) QueueDepth(ctx context.Context, url string) (int, error) {
	out, err := e.AWS.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
	if err != nil {
		return 0, fmt.Errorf("reading the depth of %s: %w", url, err)
	}
	var n, m int
	_, _ = fmt.Sscan(out.Attributes["ApproximateNumberOfMessages"], &n)
	_, _ = fmt.Sscan(out.Attributes["ApproximateNumberOfMessagesNotVisible"], &m)
	return n + m, nil
}

// Close stops the simulator. AWS resources stay in moto until it is reset or stopped.
func (e *Env) Close() error {
	if e.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("stopping the simulator: %w", err)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Destroy deletes the world's AWS resources: needed on real AWS, harmless on moto.
func (e *Env) Destroy(ctx context.Context) error {
	var errs []error
	for _, q := range append(uniqueQueues(e.ExpiryQueue, e.SecretQueue), e.DLQs...) {
		if _, err := e.AWS.SQS.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(q)}); err != nil {
			errs = append(errs, fmt.Errorf("deleting queue %s: %w", q, err))
		}
	}
	for _, a := range e.Applications {
		if _, err := e.AWS.SecretsManager.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(a.SecretID),
			ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
			errs = append(errs, fmt.Errorf("deleting secret %s: %w", a.SecretID, err))
		}
	}
	if e.KMSKeyARN != "" {
		if _, err := e.AWS.KMS.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(e.KMSKeyARN),
			PendingWindowInDays: aws.Int32(7)}); err != nil {
			errs = append(errs, fmt.Errorf("scheduling deletion of key %s: %w", e.KMSKeyARN, err))
		}
	}
	return errors.Join(errs...)
}

func uniqueQueues(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// reshaped rewrites each body before delivering it.
type reshaped struct {
	next    spapisim.Deliverer
	reshape func(string) string
}

func (r reshaped) Deliver(ctx context.Context, queueURL, body string) error {
	return r.next.Deliver(ctx, queueURL, r.reshape(body))
}
