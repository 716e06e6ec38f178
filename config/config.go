// Package config loads the daemon's one YAML file, applies environment overrides and validates
// the result, reporting every problem at once. The file never holds a client secret: secrets live
// only in Secrets Manager.
package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator/window"
)

// Config is the daemon's whole configuration.
type Config struct {
	// Listen is the HOST:PORT of the /metrics, /healthz and /readyz listener.
	Listen string `yaml:"listen"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"logLevel"`
	// RenewBefore: rotation becomes due this long before the current secret expires.
	RenewBefore Duration `yaml:"renewBefore"`
	// AwaitDeadline: how long after an accepted rotate call the new secret may take to arrive
	// before the daemon says so loudly and retries.
	AwaitDeadline Duration `yaml:"awaitDeadline"`
	Queues        Queues   `yaml:"queues"`
	Retry         Retry    `yaml:"retry"`
	// KMSKeyID is the customer-managed key the secrets must be encrypted with.
	KMSKeyID string `yaml:"kmsKeyId"`
	// SecretFormat is "lwa-rotator" (default) or "lambda-sample" (AppClientId/AppClientSecret keys).
	SecretFormat string        `yaml:"secretFormat"`
	Applications []Application `yaml:"applications"`
	// Endpoints override the LWA and SP-API addresses; for the sandbox and tests only.
	Endpoints Endpoints `yaml:"endpoints"`
	// AllowInsecureLoopback permits plain-HTTP endpoints on loopback addresses (local testing).
	AllowInsecureLoopback bool `yaml:"allowInsecureLoopback"`
	// RequestPollInterval is how often the daemon reads every application's tags for a rotation
	// requested with `lwa-rotator rotate` (one DescribeSecret per application per round; a round
	// is never shorter than one second per application).
	RequestPollInterval Duration `yaml:"requestPollInterval"`
	// ProbeInterval is how often each application's AWSCURRENT secret is proven with one LWA
	// token call (jittered), so a secret rotated in the Developer Console or edited by hand is
	// noticed within a day rather than at the next rotation.
	ProbeInterval Duration `yaml:"probeInterval"`
	// CanaryEvery is how often an application marked canary is rotated, whatever its expiry.
	CanaryEvery Duration `yaml:"canaryEvery"`
	// AtRest says what start-up does when a queue lacks server-side encryption or a secret is not
	// encrypted with the configured customer-managed key: "refuse" (default) or "warn".
	AtRest string `yaml:"atRest"`
	// RotationWindow is the weekly hours in which scheduled rotations may start, for every
	// application without one of its own.
	RotationWindow RotationWindow `yaml:"rotationWindow"`
	// Holder names this replica in the claims it makes before a rotate call (the pod, task or
	// host); empty: the host name. The daemon adds an id of its own process.
	Holder string `yaml:"holder"`
	// ClaimLease is how long a replica's claim on a due rotation lasts before another replica
	// takes the rotation over (default 5m). The holder calls only in its first fifth.
	ClaimLease Duration `yaml:"claimLease"`

	// Warnings are about a valid configuration that may not do what was meant (check-config
	// prints them); they never refuse it. Each names its field, never a value.
	Warnings []string `json:"-"`
}

// Queues are the SQS queue URLs registered for the two notification types; they may be equal.
type Queues struct {
	Expiry    string `yaml:"expiry"`
	NewSecret string `yaml:"newSecret"`
	// VisibilityTimeout hides a received message while it is worked on (extended by heartbeats).
	VisibilityTimeout Duration `yaml:"visibilityTimeout"`
	// RejectedRetry is how long a message the daemon refuses (malformed, unknown client, planted
	// secret) stays hidden between deliveries on its way to the dead-letter queue.
	RejectedRetry Duration `yaml:"rejectedRetry"`
	// DeadLetterInterval is how often the dead-letter queues' depth is read for the metric.
	DeadLetterInterval Duration `yaml:"deadLetterInterval"`
	// AllowedSenderIDs, when set, refuses any message whose SQS SenderId is not listed (the
	// daemon logs each message's sender id at debug level, so the value can be read off).
	AllowedSenderIDs []string `yaml:"allowedSenderIds"`
}

// Retry bounds the backoff between rotation attempts.
type Retry struct {
	Min Duration `yaml:"min"`
	Max Duration `yaml:"max"`
}

// Application is one SP-API application whose secret the daemon keeps fresh.
type Application struct {
	Name     string `yaml:"name"`
	ClientID string `yaml:"clientId"`
	// Region is na, eu or fe: where the rotate call goes.
	Region   string `yaml:"region"`
	SecretID string `yaml:"secretId"`
	// ApplicationID (amzn1.sp.solution.…), when set, must match the notifications' metadata.
	ApplicationID string `yaml:"applicationId"`
	// Canary marks a draft application rotated every canaryEvery through the same path as the
	// others, so a broken pipeline shows long before a production secret is due.
	Canary bool `yaml:"canary"`
	// Webhook, when its url is set, is told of every promotion of this application's secret so
	// the services that cache it can reload (docs/consumers.md).
	Webhook Webhook `yaml:"webhook"`
	// RotationWindow, when set, replaces the global rotationWindow whole for this application.
	RotationWindow RotationWindow `yaml:"rotationWindow"`

	// Window is the application's rotation window, resolved from its own rotationWindow or the
	// global one; the zero Schedule (always open) when neither is set.
	Window window.Schedule `json:"-"`
}

// RotationWindow is one or more weekly ranges of wall-clock time in an IANA time zone, such as
// "Mon-Fri 09:00-15:00" in Europe/Berlin (syntax: window.Parse). A block with no field set is
// no window; a block with any field set must have timeZone and open.
type RotationWindow struct {
	TimeZone string   `yaml:"timeZone"`
	Open     []string `yaml:"open"`
	// SafetyMargin: a rotation whose secret would expire within this margin by the time the
	// next window opens does not wait for it (default 7d).
	SafetyMargin Duration `yaml:"safetyMargin"`
}

// set tells a block that is there from one that is not: an explicit empty open list counts, so
// that it is reported rather than read as no window.
func (w RotationWindow) set() bool { return w.TimeZone != "" || w.Open != nil || w.SafetyMargin != 0 }

// Webhook is an HTTP endpoint told of each promotion: a signed JSON event that never carries the
// secret. The HMAC key comes from exactly one of HMACKeySecretID and HMACKeyFile, and is re-read
// on every reload.
type Webhook struct {
	URL string `yaml:"url"`
	// HMACKeySecretID is a Secrets Manager secret (name or ARN) holding the signing key.
	HMACKeySecretID string `yaml:"hmacKeySecretId"`
	// HMACKeyFile is a file holding the signing key (a mounted Kubernetes secret, say).
	HMACKeyFile string `yaml:"hmacKeyFile"`
	// RetryFor bounds how long an unacknowledged event is retried (default 6d); delivery also
	// stops an hour before the previous secret expires, when the news is no longer useful.
	RetryFor Duration `yaml:"retryFor"`
}

// Enabled reports whether the application has a webhook.
func (w Webhook) Enabled() bool { return w.URL != "" }

// Endpoints are address overrides for the sandbox and tests.
type Endpoints struct {
	LWA   string            `yaml:"lwa"`
	SPAPI map[string]string `yaml:"spapi"`
	// RotateInterval is the client-side limit between rotate calls per application. Amazon allows
	// one a minute, the default; only a simulator with a faster limit justifies less.
	RotateInterval Duration `yaml:"rotateInterval"`
}

// Defaults for fields the file leaves out.
const (
	DefaultListen        = "127.0.0.1:9464"
	DefaultLogLevel      = "info"
	DefaultRenewBefore   = 30 * 24 * time.Hour
	DefaultAwaitDeadline = time.Hour
	DefaultSecretFormat  = "lwa-rotator"
	// DefaultRequestPollInterval bounds how long a rotation request waits for the daemon.
	DefaultRequestPollInterval = time.Minute
	// DefaultProbeInterval: a secret changed behind the daemon's back is found within a day.
	DefaultProbeInterval = 24 * time.Hour
	// DefaultCanaryEvery: Amazon's guide says to rotate a draft application first; weekly keeps
	// the whole pipeline proven between two production rotations months apart.
	DefaultCanaryEvery = 7 * 24 * time.Hour
	// DefaultWebhookRetryFor keeps retrying a webhook for most of the 7 days the previous
	// secret still works.
	DefaultWebhookRetryFor = 6 * 24 * time.Hour
	// DefaultSafetyMargin: a rotation that cannot start in a window before its secret is within
	// a week of expiry starts outside it, leaving a week to retry.
	DefaultSafetyMargin = 7 * 24 * time.Hour
	// DefaultClaimLease: a replica that dies holding a claim delays its rotation five minutes.
	DefaultClaimLease = 5 * time.Minute
)

// Load reads path, applies the LWA_ROTATOR_* overrides found through getenv, fills defaults and
// validates. A *ValidationError lists every problem found.
func Load(path string, getenv func(string) string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if LooksLikeSecret(path) {
			return nil, &ValidationError{Problems: []string{"config file path: " + SecretAdvice}}
		}
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	return Parse(raw, getenv)
}

// Parse is Load without the file read. Every problem of the file (syntax, unknown keys, wrong
// types, invalid values) and of the environment overrides is reported in one *ValidationError,
// each naming its field and line, none quoting a value that could be a secret. The warnings
// about a valid configuration are in its Warnings.
func Parse(raw []byte, getenv func(string) string) (*Config, error) {
	var c Config
	p := newProblems()
	if root := parseTree(raw, p); root != nil {
		decodeNode(root, reflect.ValueOf(&c), "", p, p.lines)
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	c.applyEnv(getenv, p)
	c.applyDefaults()
	c.validate(p)
	if len(p.list) > 0 {
		return nil, &ValidationError{Problems: p.list}
	}
	c.Warnings = p.warnings
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.RenewBefore == 0 {
		c.RenewBefore = Duration(DefaultRenewBefore)
	}
	if c.AwaitDeadline == 0 {
		c.AwaitDeadline = Duration(DefaultAwaitDeadline)
	}
	if c.SecretFormat == "" {
		c.SecretFormat = DefaultSecretFormat
	}
	if c.RequestPollInterval == 0 {
		c.RequestPollInterval = Duration(DefaultRequestPollInterval)
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = Duration(DefaultProbeInterval)
	}
	if c.CanaryEvery == 0 {
		c.CanaryEvery = Duration(DefaultCanaryEvery)
	}
	if c.Queues.VisibilityTimeout == 0 {
		c.Queues.VisibilityTimeout = Duration(time.Minute)
	}
	if c.Queues.DeadLetterInterval == 0 {
		c.Queues.DeadLetterInterval = Duration(time.Minute)
	}
	if c.Queues.RejectedRetry == 0 {
		c.Queues.RejectedRetry = Duration(15 * time.Minute)
	}
	if c.Retry.Min == 0 {
		c.Retry.Min = Duration(time.Minute)
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = Duration(time.Hour)
	}
	if c.AtRest == "" {
		c.AtRest = "refuse"
	}
	if c.ClaimLease == 0 {
		c.ClaimLease = Duration(DefaultClaimLease)
	}
	for i := range c.Applications {
		if w := &c.Applications[i].Webhook; w.Enabled() && w.RetryFor == 0 {
			w.RetryFor = Duration(DefaultWebhookRetryFor)
		}
		c.Applications[i].RotationWindow.applyDefaults()
	}
	c.RotationWindow.applyDefaults()
}

// ValidationError carries every problem found in a configuration.
type ValidationError struct{ Problems []string }

func (e *ValidationError) Error() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p)
	}
	return b.String()
}

// Application returns the application configured for clientID.
func (c *Config) Application(clientID string) (Application, bool) {
	for _, a := range c.Applications {
		if a.ClientID == clientID {
			return a, true
		}
	}
	return Application{}, false
}
