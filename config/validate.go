package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"
)

var regions = map[string]bool{"na": true, "eu": true, "fe": true}

var logLevels = map[string]bool{"debug": true, "info": true, "warn": true, "error": true}

// The closed alphabets of fields whose wrong value is worth repeating: a value that matches can
// not be a secret (secrets carry dots and 64 characters).
var (
	shortWord = regexp.MustCompile(`^[a-z-]{1,16}$`)
	region    = regexp.MustCompile(`^[a-z]{1,8}$`)
)

// The shapes of identifiers, checked so that a wrong value is caught here rather than echoed
// back by an AWS error message later.
var (
	clientIDShape = regexp.MustCompile(`^amzn1\.application-oa2-client\.[A-Za-z0-9]{1,64}$`)
	appIDShape    = regexp.MustCompile(`^amzn1\.sp\.solution\.[A-Za-z0-9-]{1,64}$`)
	secretIDShape = regexp.MustCompile(`^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}|[A-Za-z0-9/_+=.@-]{1,512})$`)
	kmsKeyShape   = regexp.MustCompile(`^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key/[A-Za-z0-9-]{1,64}|alias/[A-Za-z0-9/_-]{1,250})|alias/[A-Za-z0-9/_-]{1,250}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`)
	senderIDShape = regexp.MustCompile(`^[A-Za-z0-9:_.@-]{1,128}$`)
	hostShape     = regexp.MustCompile(`^[A-Za-z0-9.:\[\]-]{0,253}$`)
)

// sqsMaxVisibility is SQS's limit on how long a received message can stay hidden, counted from
// its receipt: a ChangeMessageVisibility past it is refused.
const sqsMaxVisibility = 12 * time.Hour

// validate records every problem, not just the first: an operator fixing a file should see them
// all in one run of check-config.
// holderShape is what Secrets Manager accepts in a tag value, where a holder's name is written.
var holderShape = regexp.MustCompile(`^[A-Za-z0-9._:/@=+-]{1,128}$`)

func (c *Config) validate(p *problems) {
	if host, port, err := net.SplitHostPort(c.Listen); err != nil || !hostShape.MatchString(host) || !validPort(port) {
		p.at("listen", "is not HOST:PORT")
	}
	if !logLevels[c.LogLevel] {
		p.at("logLevel", "%sis not one of debug, info, warn, error", shown(c.LogLevel, shortWord))
	}
	if c.RenewBefore.D() < time.Hour {
		p.at("renewBefore", "%s is too short (at least 1h)", c.RenewBefore.D())
	}
	if c.RenewBefore.D() > 170*24*time.Hour {
		p.at("renewBefore", "%s is longer than a secret's 180-day life allows (at most 170d)", c.RenewBefore.D())
	}
	if c.AwaitDeadline.D() < 5*time.Second || c.AwaitDeadline.D() > 72*time.Hour {
		p.at("awaitDeadline", "%s must be between 5s and 72h", c.AwaitDeadline.D())
	}
	if v := c.RequestPollInterval.D(); v < time.Second || v > 24*time.Hour {
		p.at("requestPollInterval", "%s must be between 1s and 24h", v)
	}
	if c.Holder != "" && !holderShape.MatchString(c.Holder) {
		p.at("holder", "must be 1 to 128 letters, digits and . _ - : / @ = +")
	}
	if v := c.ClaimLease.D(); v < 5*time.Second || v > time.Hour {
		p.at("claimLease", "%s must be between 5s and 1h", v)
	}
	// Seconds are for tests and the sandbox; one LWA token call per application per interval.
	if v := c.ProbeInterval.D(); v < time.Second || v > 7*24*time.Hour {
		p.at("probeInterval", "%s must be between 1s and 168h", v)
	}
	if v := c.CanaryEvery.D(); v < time.Hour || v > 90*24*time.Hour {
		p.at("canaryEvery", "%s must be between 1h and 2160h", v)
	}
	vis := c.Queues.VisibilityTimeout.D()
	if vis < 5*time.Second || vis > sqsMaxVisibility {
		p.at("queues.visibilityTimeout", "%s must be between 5s and 12h", vis)
	}
	if v := c.Queues.DeadLetterInterval.D(); v < time.Second || v > 24*time.Hour {
		p.at("queues.deadLetterInterval", "%s must be between 1s and 24h", v)
	}
	// A refused message is hidden for rejectedRetry after it was worked on, and SQS counts the
	// 12 hours from the receipt: leave room for one visibility timeout of work and one more of
	// heartbeats, or SQS refuses the change and the message comes back at once.
	if v, most := c.Queues.RejectedRetry.D(), sqsMaxVisibility-2*max(vis, 5*time.Second); v < time.Second || v > most {
		p.at("queues.rejectedRetry", "%s must be between 1s and %s (SQS hides a message at most 12h from its receipt, less two visibility timeouts of work)", v, most)
	}
	if c.Retry.Min.D() < time.Second || c.Retry.Max.D() < c.Retry.Min.D() || c.Retry.Max.D() > 24*time.Hour {
		p.at("retry", "min %s and max %s must satisfy 1s <= min <= max <= 24h", c.Retry.Min.D(), c.Retry.Max.D())
	}
	if c.SecretFormat != "lwa-rotator" && c.SecretFormat != "lambda-sample" {
		p.at("secretFormat", "%sis not lwa-rotator or lambda-sample", shown(c.SecretFormat, shortWord))
	}
	if c.AtRest != "refuse" && c.AtRest != "warn" {
		p.at("atRest", "%sis not refuse or warn", shown(c.AtRest, shortWord))
	}
	if c.Queues.Expiry == "" {
		p.at("queues.expiry", "required (the queue registered for Application Client Secret Expiry)")
	} else {
		c.checkURL(p, "queues.expiry", c.Queues.Expiry)
	}
	if c.Queues.NewSecret == "" {
		p.at("queues.newSecret", "required (the queue registered for Application Client New Secret)")
	} else {
		c.checkURL(p, "queues.newSecret", c.Queues.NewSecret)
	}
	for i, id := range c.Queues.AllowedSenderIDs {
		if !senderIDShape.MatchString(id) {
			p.at(fmt.Sprintf("queues.allowedSenderIds[%d]", i), "does not look like an SQS sender id (an account id or an IAM unique id)")
		}
	}
	switch {
	case c.KMSKeyID == "":
		p.at("kmsKeyId", "required (the customer-managed KMS key the secrets are encrypted with)")
	case !kmsKeyShape.MatchString(c.KMSKeyID):
		p.at("kmsKeyId", "is not a KMS key id, key ARN, alias name or alias ARN")
	}
	if c.Endpoints.LWA != "" {
		c.checkURL(p, "endpoints.lwa", c.Endpoints.LWA)
	}
	for _, r := range sortedKeys(c.Endpoints.SPAPI) {
		if !regions[r] {
			p.at("endpoints.spapi."+r, "unknown region (na, eu, fe)")
		}
		c.checkURL(p, "endpoints.spapi."+r, c.Endpoints.SPAPI[r])
	}
	if c.Endpoints.RotateInterval != 0 && len(c.Endpoints.SPAPI) == 0 {
		p.at("endpoints.rotateInterval", "only allowed with endpoints.spapi (Amazon allows one rotate call a minute)")
	}
	if len(c.Applications) == 0 {
		p.at("applications", "at least one application is required")
	}
	names, ids, secrets := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, a := range c.Applications {
		where := fmt.Sprintf("applications[%d]", i)
		switch {
		case a.Name == "":
			p.at(where+".name", "required")
		case !validName(a.Name):
			p.at(where+".name", "use letters, digits, '-' and '_' only, at most 64 (it becomes a metric label)")
		case names[a.Name]:
			p.at(where+".name", "duplicate name")
		}
		names[a.Name] = true
		switch {
		case a.ClientID == "":
			p.at(where+".clientId", "required")
		case !clientIDShape.MatchString(a.ClientID):
			p.at(where+".clientId", "does not look like an LWA client id (amzn1.application-oa2-client.…)")
		case ids[a.ClientID]:
			p.at(where+".clientId", "configured twice")
		}
		ids[a.ClientID] = true
		if a.Region == "" {
			p.at(where+".region", "required (na, eu or fe)")
		} else if !regions[a.Region] {
			p.at(where+".region", "%sis not na, eu or fe", shown(a.Region, region))
		}
		switch {
		case a.SecretID == "":
			p.at(where+".secretId", "required (the Secrets Manager secret name or ARN)")
		case !secretIDShape.MatchString(a.SecretID):
			p.at(where+".secretId", "is not a Secrets Manager secret name or ARN")
		case secrets[a.SecretID]:
			p.at(where+".secretId", "shared with another application")
		}
		secrets[a.SecretID] = true
		if a.ApplicationID != "" && !appIDShape.MatchString(a.ApplicationID) {
			p.at(where+".applicationId", "does not look like an SP-API application id (amzn1.sp.solution.…)")
		}
		c.validateWebhook(p, where+".webhook", a.Webhook)
	}
	c.validateWindows(p)
	// A webhook key read from an application's own secret would sign with the LWA secret.
	for i, a := range c.Applications {
		if id := a.Webhook.HMACKeySecretID; id != "" && secrets[id] {
			p.at(fmt.Sprintf("applications[%d].webhook.hmacKeySecretId", i), "names an application's LWA secret; the signing key needs a secret of its own")
		}
	}
}

// validateWebhook checks one application's webhook block; an empty block means no webhook.
func (c *Config) validateWebhook(p *problems, where string, w Webhook) {
	if w == (Webhook{}) {
		return
	}
	if w.URL == "" {
		p.at(where+".url", "required when the webhook block is set")
	} else {
		c.checkURL(p, where+".url", w.URL)
		// Credentials in the URL would end up in proxies' and receivers' logs; the HMAC
		// signature is how the receiver authenticates the daemon.
		if u, err := url.Parse(w.URL); err == nil && u.User != nil {
			p.at(where+".url", "must not carry a user name or password (the receiver checks the signature instead)")
		}
	}
	switch {
	case w.HMACKeySecretID == "" && w.HMACKeyFile == "":
		p.at(where, "needs hmacKeySecretId or hmacKeyFile (the key that signs each event)")
	case w.HMACKeySecretID != "" && w.HMACKeyFile != "":
		p.at(where, "set only one of hmacKeySecretId and hmacKeyFile")
	case w.HMACKeySecretID != "" && !secretIDShape.MatchString(w.HMACKeySecretID):
		p.at(where+".hmacKeySecretId", "is not a Secrets Manager secret name or ARN")
	case w.HMACKeyFile != "" && !filepath.IsAbs(w.HMACKeyFile):
		p.at(where+".hmacKeyFile", "must be an absolute path")
	}
	if v := w.RetryFor.D(); v != 0 && (v < time.Minute || v > 7*24*time.Hour) {
		p.at(where+".retryFor", "%s must be between 1m and 7d (the previous secret works 7 days)", v)
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func validName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return len(s) <= 64
}

// checkURL refuses plain HTTP except to loopback when explicitly allowed: the daemon carries
// secrets, so transport encryption is not optional. The URL itself is never repeated.
func (c *Config) checkURL(p *problems, field, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		p.at(field, "is not an absolute URL")
		return
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !c.AllowInsecureLoopback || !IsLoopback(u.Hostname()) {
			p.at(field, "uses plain http (allowed only for loopback with allowInsecureLoopback)")
		}
	default:
		p.at(field, "must be https")
	}
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckTransport applies the endpoint rule (https, or http to loopback when allowed) to an
// endpoint that comes from outside the file, such as AWS_ENDPOINT_URL_SQS. The error names field.
func (c *Config) CheckTransport(field, raw string) error {
	p := newProblems()
	if LooksLikeSecret(raw) {
		p.list = append(p.list, field+": "+SecretAdvice)
	} else {
		c.checkURL(p, field, raw)
	}
	if len(p.list) > 0 {
		return fmt.Errorf("%s", p.list[0])
	}
	return nil
}

// AWSEndpointVars are the AWS SDK's endpoint overrides for the services the daemon and its
// commands call. They carry secrets' traffic, so they obey the file's transport rule.
var AWSEndpointVars = []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL_KMS"}

// CheckAWSEndpoints applies CheckTransport to every AWSEndpointVars variable that is set; a
// *ValidationError names each one that breaks the rule.
func (c *Config) CheckAWSEndpoints(getenv func(string) string) error {
	var problems []string
	for _, v := range AWSEndpointVars {
		if raw := getenv(v); raw != "" {
			if err := c.CheckTransport(v, raw); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	if len(problems) > 0 {
		return &ValidationError{Problems: problems}
	}
	return nil
}
