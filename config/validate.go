package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

var regions = map[string]bool{"na": true, "eu": true, "fe": true}

var logLevels = map[string]bool{"debug": true, "info": true, "warn": true, "error": true}

// validate returns every problem, not just the first: an operator fixing a file should see them
// all in one run of check-config.
func (c *Config) validate() []string {
	var p []string
	add := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }

	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not HOST:PORT", c.Listen)
	}
	if !logLevels[c.LogLevel] {
		add("logLevel: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	if c.RenewBefore.D() < time.Hour {
		add("renewBefore: %s is too short (at least 1h)", c.RenewBefore.D())
	}
	if c.RenewBefore.D() > 170*24*time.Hour {
		add("renewBefore: %s is longer than a secret's 180-day life allows (at most 170d)", c.RenewBefore.D())
	}
	if c.AwaitDeadline.D() < 5*time.Second || c.AwaitDeadline.D() > 72*time.Hour {
		add("awaitDeadline: %s must be between 5s and 72h", c.AwaitDeadline.D())
	}
	if v := c.RequestPollInterval.D(); v < time.Second || v > 24*time.Hour {
		add("requestPollInterval: %s must be between 1s and 24h", v)
	}
	if v := c.Queues.VisibilityTimeout.D(); v < 5*time.Second || v > 12*time.Hour {
		add("queues.visibilityTimeout: %s must be between 5s and 12h", v)
	}
	if v := c.Queues.DeadLetterInterval.D(); v < time.Second || v > 24*time.Hour {
		add("queues.deadLetterInterval: %s must be between 1s and 24h", v)
	}
	if v := c.Queues.RejectedRetry.D(); v < time.Second || v > 12*time.Hour {
		add("queues.rejectedRetry: %s must be between 1s and 12h", v)
	}
	if c.Retry.Min.D() < time.Second || c.Retry.Max.D() < c.Retry.Min.D() || c.Retry.Max.D() > 24*time.Hour {
		add("retry: min %s and max %s must satisfy 1s <= min <= max <= 24h", c.Retry.Min.D(), c.Retry.Max.D())
	}
	if c.SecretFormat != "lwa-rotator" && c.SecretFormat != "lambda-sample" {
		add("secretFormat: %q is not lwa-rotator or lambda-sample", c.SecretFormat)
	}
	if c.AtRest != "refuse" && c.AtRest != "warn" {
		add("atRest: %q is not refuse or warn", c.AtRest)
	}
	if c.Queues.Expiry == "" {
		add("queues.expiry: required (the queue registered for Application Client Secret Expiry)")
	} else {
		p = append(p, c.checkURL("queues.expiry", c.Queues.Expiry)...)
	}
	if c.Queues.NewSecret == "" {
		add("queues.newSecret: required (the queue registered for Application Client New Secret)")
	} else {
		p = append(p, c.checkURL("queues.newSecret", c.Queues.NewSecret)...)
	}
	if c.KMSKeyID == "" {
		add("kmsKeyId: required (the customer-managed KMS key the secrets are encrypted with)")
	}
	if c.Endpoints.LWA != "" {
		p = append(p, c.checkURL("endpoints.lwa", c.Endpoints.LWA)...)
	}
	for r, u := range c.Endpoints.SPAPI {
		if !regions[r] {
			add("endpoints.spapi.%s: unknown region (na, eu, fe)", r)
		}
		p = append(p, c.checkURL("endpoints.spapi."+r, u)...)
	}
	if c.Endpoints.RotateInterval != 0 && len(c.Endpoints.SPAPI) == 0 {
		add("endpoints.rotateInterval: only allowed with endpoints.spapi (Amazon allows one rotate call a minute)")
	}
	if len(c.Applications) == 0 {
		add("applications: at least one application is required")
	}
	names, ids, secrets := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, a := range c.Applications {
		where := fmt.Sprintf("applications[%d]", i)
		if a.Name != "" {
			where = fmt.Sprintf("applications[%d] (%s)", i, a.Name)
		}
		switch {
		case a.Name == "":
			add("%s.name: required", where)
		case !validName(a.Name):
			add("%s.name: use letters, digits, '-' and '_' only (it becomes a metric label)", where)
		case names[a.Name]:
			add("%s.name: duplicate name", where)
		}
		names[a.Name] = true
		switch {
		case a.ClientID == "":
			add("%s.clientId: required", where)
		case !strings.HasPrefix(a.ClientID, "amzn1.application-oa2-client."):
			add("%s.clientId: %q does not look like an LWA client id (amzn1.application-oa2-client.…)", where, a.ClientID)
		case ids[a.ClientID]:
			add("%s.clientId: configured twice", where)
		}
		ids[a.ClientID] = true
		if !regions[a.Region] {
			add("%s.region: %q is not na, eu or fe", where, a.Region)
		}
		switch {
		case a.SecretID == "":
			add("%s.secretId: required (the Secrets Manager secret name or ARN)", where)
		case secrets[a.SecretID]:
			add("%s.secretId: shared with another application", where)
		}
		secrets[a.SecretID] = true
		if a.ApplicationID != "" && !strings.HasPrefix(a.ApplicationID, "amzn1.sp.solution.") {
			add("%s.applicationId: %q does not look like an SP-API application id (amzn1.sp.solution.…)", where, a.ApplicationID)
		}
	}
	return p
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
// secrets, so transport encryption is not optional.
func (c *Config) checkURL(field, raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return []string{fmt.Sprintf("%s: %q is not an absolute URL", field, raw)}
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if c.AllowInsecureLoopback && IsLoopback(u.Hostname()) {
			return nil
		}
		return []string{fmt.Sprintf("%s: %q uses plain http (allowed only for loopback with allowInsecureLoopback)", field, raw)}
	default:
		return []string{fmt.Sprintf("%s: %q must be https", field, raw)}
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
// endpoint that comes from outside the file, such as AWS_ENDPOINT_URL_SQS.
func (c *Config) CheckTransport(field, raw string) error {
	if p := c.checkURL(field, raw); len(p) > 0 {
		return fmt.Errorf("%s", p[0])
	}
	return nil
}
