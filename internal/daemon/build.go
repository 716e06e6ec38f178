package daemon

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/internal/awsmetrics"
	"github.com/spapi-tools/lwa-rotator/internal/daemon/reload"
	"github.com/spapi-tools/lwa-rotator/internal/webhook"
	"github.com/spapi-tools/lwa-rotator/metrics"
	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
)

type daemon struct {
	opts      Options
	log       *zap.Logger
	level     *zap.AtomicLevel
	reg       *prometheus.Registry
	metrics   *metrics.Metrics
	rot       *rotator.Rotator
	consumers []*notifications.Consumer
	health    *health
	// deadLetters are the queues' DLQs, whose depth is watched; sqs reads it.
	deadLetters []notifications.DeadLetterQueue
	sqs         notifications.QueueAttributes

	// webhooks tells each application's consumers of its promotions.
	webhooks *webhook.Notifier
	// config holds the running configuration and applies every new one to the parts.
	config *reload.Coordinator
}

// build makes the parts from the start-up configuration, then applies it through the coordinator
// as its first apply: a configuration a part refuses stops the start-up with that part's reason,
// exactly as it would refuse a reload. Only what a part is built from (its restart-only fields)
// is read here.
func build(ctx context.Context, o Options, cfg *config.Config, log *zap.Logger, level *zap.AtomicLevel) (*daemon, error) {
	d := &daemon{opts: o, log: log, level: level, reg: prometheus.NewRegistry()}
	d.health = newHealth()
	d.metrics = metrics.New(d.reg, snapshotFunc(func() []rotator.Status {
		if d.rot == nil {
			return nil
		}
		return d.rot.Snapshot()
	}), d.ready, o.Version, o.Revision, metrics.WithClock(o.Clock))

	awsCfg := o.AWS.Copy()
	// Bound every AWS call (a long poll takes 20 s): a link that swallows packets must not hang
	// a consumer forever. The SDK's own client keeps its transport settings (CA bundle, proxy).
	if bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
		awsCfg.HTTPClient = bc.WithTimeout(45 * time.Second)
	}
	awsCfg.APIOptions = append(awsCfg.APIOptions, awsmetrics.Middleware(d.metrics, o.Clock, log))
	sqsClient := sqs.NewFromConfig(awsCfg)
	smClient := secretsmanager.NewFromConfig(awsCfg)
	kmsClient := kms.NewFromConfig(awsCfg)

	httpClient := o.HTTP
	if httpClient == nil {
		httpClient = hardenedHTTPClient()
	}
	store := &vault.Store{SM: smClient, Format: vault.Format(cfg.SecretFormat), Log: log, Clock: o.Clock}
	lwa := &spapi.LWAClient{HTTP: httpClient, Endpoint: lwaEndpoint(cfg), Log: log, Clock: o.Clock, Observer: d.metrics}
	app := &spapi.AppClient{HTTP: httpClient, Endpoints: spapiEndpoints(cfg), Log: log, Clock: o.Clock, Observer: d.metrics}

	secrets, err := vault.NewAtRest(ctx, cfg.KMSKeyID, store, kmsClient, log)
	if err != nil {
		return nil, err
	}
	dlqs, queueViolations := notifications.CheckQueues(ctx, sqsClient, uniq(cfg.Queues.Expiry, cfg.Queues.NewSecret), d.health, log)
	d.webhooks = webhook.New(webhook.Options{Clock: o.Clock, Log: log, Registerer: d.reg, HTTP: httpClient, SM: smClient})
	rp := &rotatorPart{log: log, opts: rotator.Options{
		Vault: store, LWA: lwa, SPAPI: app, Clock: o.Clock, Log: log, Observer: d.metrics,
		Checkpoint: crashPoint(o.Getenv("LWA_ROTATOR_TEST_CRASH_AT"), log),
		Promoted:   d.webhooks.Promoted, PassConcurrency: passConcurrency, Holder: holder(cfg.Holder, o.Hostname),
		// The start-up pass over many applications leaves megabytes of garbage (listing pages,
		// batched values) that an idle daemon would otherwise carry until its heap grew enough
		// for the next collection, hours later: collect once and hand it back to the system.
		FirstPassDone: debug.FreeOSMemory,
	}}
	d.config = reload.New(reload.Options{Path: o.ConfigPath, Getenv: o.Getenv, Clock: o.Clock, Log: log, Metrics: d.metrics,
		Parts: parts(o, log, level, queueViolations, secrets, d.webhooks, rp)})
	if err := d.config.Apply(ctx, cfg); err != nil {
		return nil, err
	}
	d.rot = rp.rot
	// The queues' settings are read once: they change only on restart (see reload.go).
	dispatch := &notifications.Dispatcher{
		Receiver: d.rot, Observer: d.metrics, Log: log, AllowedSenderIDs: cfg.Queues.AllowedSenderIDs,
		RejectedRetry: cfg.Queues.RejectedRetry.D(), RetryMin: messageRetryMin, RetryMax: messageRetryMax, Clock: o.Clock,
	}

	queues := map[string]string{}
	if cfg.Queues.Expiry == cfg.Queues.NewSecret {
		queues[cfg.Queues.Expiry] = "shared"
	} else {
		queues[cfg.Queues.Expiry] = "expiry"
		queues[cfg.Queues.NewSecret] = "new_secret"
	}
	d.metrics.Init(queues)
	for url, label := range queues {
		if dlq, ok := dlqs[url]; ok {
			d.deadLetters = append(d.deadLetters, notifications.DeadLetterQueue{Label: label, URL: dlq})
		}
	}
	d.sqs = sqsClient
	// A reload refuses a change of either interval, so the units' series are made once.
	if cfg.RequestPollInterval.D() > 0 {
		d.metrics.BackgroundUnit(metrics.UnitRequestWatch, cfg.RequestPollInterval.D(), o.Clock.Now())
	}
	if len(d.deadLetters) > 0 {
		d.metrics.BackgroundUnit(metrics.UnitDeadLetterWatch, cfg.Queues.DeadLetterInterval.D(), o.Clock.Now())
	}
	for url := range queues {
		d.consumers = append(d.consumers, &notifications.Consumer{
			SQS: sqsClient, QueueURL: url, Handler: dispatch, Log: log, Clock: o.Clock,
			Observer: multiObserver{d.metrics, d.health}, VisibilityTimeout: cfg.Queues.VisibilityTimeout.D(),
			Concurrency: messageConcurrency,
			// A backlog's garbage would otherwise stay with an idle daemon for hours (see
			// FirstPassDone).
			Drained: debug.FreeOSMemory,
		})
	}
	return d, nil
}

// A failed message comes back after 5 s, doubling to 5 min while its application's messages keep
// failing: soon enough that a verified secret is promoted within seconds of a blip, far enough
// apart that a long outage burns few receives.
const (
	messageRetryMin = 5 * time.Second
	messageRetryMax = 5 * time.Minute
)

// messageConcurrency is how many applications' messages of one batch each queue's consumer
// handles at once (one application's always one at a time, in order). A promoted message makes
// three Secrets Manager writes; Secrets Manager's published rate for each write API is 50 per
// second, so two queues at four each stay well inside it even on a fast link, while a backlog
// across many applications drains several times faster than one message at a time.
const messageConcurrency = 4

// passConcurrency is how many applications a scheduler pass works on at once: a start-up over a
// thousand applications reads them in about a second, inside Secrets Manager's published rates
// for DescribeSecret and GetSecretValue.
const passConcurrency = 8

func settings(cfg *config.Config) rotator.Settings {
	return rotator.Settings{RenewBefore: cfg.RenewBefore.D(), AwaitDeadline: cfg.AwaitDeadline.D(),
		RetryMin: cfg.Retry.Min.D(), RetryMax: cfg.Retry.Max.D(), ProbeEvery: cfg.ProbeInterval.D(), CanaryEvery: cfg.CanaryEvery.D(),
		RotateInterval: cfg.Endpoints.RotateInterval.D(), ClaimLease: cfg.ClaimLease.D()}
}

func apps(cfg *config.Config) []rotator.App {
	out := make([]rotator.App, 0, len(cfg.Applications))
	for _, a := range cfg.Applications {
		out = append(out, rotator.App{Name: a.Name, ClientID: a.ClientID, Region: spapi.Region(a.Region), SecretID: a.SecretID, ApplicationID: a.ApplicationID,
			Canary: a.Canary, Window: a.Window})
	}
	return out
}

func webhookTargets(cfg *config.Config) []webhook.Target {
	var out []webhook.Target
	for _, a := range cfg.Applications {
		if w := a.Webhook; w.Enabled() {
			out = append(out, webhook.Target{App: a.Name, URL: w.URL, RetryFor: w.RetryFor.D(),
				Key: webhook.KeySource{SecretID: w.HMACKeySecretID, File: w.HMACKeyFile}})
		}
	}
	return out
}

func lwaEndpoint(cfg *config.Config) string {
	if cfg.Endpoints.LWA != "" {
		return cfg.Endpoints.LWA
	}
	return spapi.DefaultLWAEndpoint
}

func spapiEndpoints(cfg *config.Config) map[spapi.Region]string {
	out := map[spapi.Region]string{}
	for r, u := range cfg.Endpoints.SPAPI {
		out[spapi.Region(r)] = u
	}
	return out
}

// hardenedHTTPClient speaks TLS 1.2 or newer with certificate verification always on, and never
// waits forever.
func hardenedHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

type snapshotFunc func() []rotator.Status

func (f snapshotFunc) Snapshot() []rotator.Status { return f() }

type multiObserver []notifications.Observer

func (m multiObserver) Polled(queueURL string, n int, err error) {
	for _, o := range m {
		o.Polled(queueURL, n, err)
	}
}

func newJSONLogger(level zap.AtomicLevel) (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	cfg.Level = level
	cfg.Sampling = nil // every rotation line matters; volume is tiny
	// An expected failure (a refused reload, an unreachable queue) is said by its message and
	// fields; a Go stack trace in the log store helps nobody operating the daemon.
	cfg.DisableStacktrace = true
	log, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("building the JSON logger: %w", err)
	}
	return log, nil
}

// holder names this process in its claims: the configured name, or the host's (the pod's name
// on Kubernetes, the task's host name on ECS), then an id of this process, so that a process
// restarted under the same name does not take its predecessor's claim for its own.
func holder(configured string, hostname func() (string, error)) string {
	name := configured
	if name == "" {
		h, err := hostname()
		if err != nil || h == "" {
			h = "lwa-rotator"
		}
		name = tagSafe(h)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return name + "/" + hex.EncodeToString(b[:])
}

// tagSafe keeps the characters a tag value may hold, at most 128 of them.
func tagSafe(s string) string {
	out := []rune{}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("._:/@=+-", r):
			out = append(out, r)
		default:
			out = append(out, '-')
		}
		if len(out) == 128 {
			break
		}
	}
	return string(out)
}
