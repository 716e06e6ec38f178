package config

import (
	"fmt"
	"strconv"
)

// Env lists the variables that override the file, so check-config and the README share one list.
var Env = []struct{ Name, Field string }{
	{"LWA_ROTATOR_LISTEN", "listen"},
	{"LWA_ROTATOR_LOG_LEVEL", "logLevel"},
	{"LWA_ROTATOR_RENEW_BEFORE", "renewBefore"},
	{"LWA_ROTATOR_AWAIT_DEADLINE", "awaitDeadline"},
	{"LWA_ROTATOR_EXPIRY_QUEUE_URL", "queues.expiry"},
	{"LWA_ROTATOR_NEW_SECRET_QUEUE_URL", "queues.newSecret"},
	{"LWA_ROTATOR_KMS_KEY_ID", "kmsKeyId"},
	{"LWA_ROTATOR_SECRET_FORMAT", "secretFormat"},
	{"LWA_ROTATOR_LWA_ENDPOINT", "endpoints.lwa"},
	{"LWA_ROTATOR_SPAPI_ENDPOINT", "endpoints.spapi (all regions)"},
	{"LWA_ROTATOR_ALLOW_INSECURE_LOOPBACK", "allowInsecureLoopback"},
	{"LWA_ROTATOR_AT_REST", "atRest"},
	{"LWA_ROTATOR_HOLDER", "holder"},
}

// applyEnv copies set variables over the file's values. AWS endpoints and credentials are not
// here on purpose: the SDK's own chain (AWS_ENDPOINT_URL_SQS, AWS_REGION, …) owns those. A field
// set from the environment is reported under its variable's name, and no value is ever repeated.
func (c *Config) applyEnv(getenv func(string) string, p *problems) {
	fields := map[string]string{}
	for _, e := range Env {
		fields[e.Name] = e.Field
	}
	get := func(name string) (string, bool) {
		v := getenv(name)
		if v == "" {
			return "", false
		}
		if LooksLikeSecret(v) {
			p.list = append(p.list, name+": "+SecretAdvice)
			return "", false
		}
		p.origins[fields[name]] = name
		return v, true
	}
	str := func(name string, dst *string) {
		if v, ok := get(name); ok {
			*dst = v
		}
	}
	dur := func(name string, dst *Duration) {
		if v, ok := get(name); ok {
			d, err := ParseDuration(v)
			if err != nil {
				p.list = append(p.list, fmt.Sprintf("%s: %v", name, err))
				return
			}
			*dst = Duration(d)
		}
	}
	str("LWA_ROTATOR_LISTEN", &c.Listen)
	str("LWA_ROTATOR_LOG_LEVEL", &c.LogLevel)
	dur("LWA_ROTATOR_RENEW_BEFORE", &c.RenewBefore)
	dur("LWA_ROTATOR_AWAIT_DEADLINE", &c.AwaitDeadline)
	str("LWA_ROTATOR_EXPIRY_QUEUE_URL", &c.Queues.Expiry)
	str("LWA_ROTATOR_NEW_SECRET_QUEUE_URL", &c.Queues.NewSecret)
	str("LWA_ROTATOR_KMS_KEY_ID", &c.KMSKeyID)
	str("LWA_ROTATOR_SECRET_FORMAT", &c.SecretFormat)
	str("LWA_ROTATOR_LWA_ENDPOINT", &c.Endpoints.LWA)
	str("LWA_ROTATOR_AT_REST", &c.AtRest)
	str("LWA_ROTATOR_HOLDER", &c.Holder)
	if v, ok := get("LWA_ROTATOR_SPAPI_ENDPOINT"); ok {
		c.Endpoints.SPAPI = map[string]string{"na": v, "eu": v, "fe": v}
		for _, r := range []string{"na", "eu", "fe"} {
			p.origins["endpoints.spapi."+r] = "LWA_ROTATOR_SPAPI_ENDPOINT"
		}
	}
	if v, ok := get("LWA_ROTATOR_ALLOW_INSECURE_LOOPBACK"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			p.list = append(p.list, "LWA_ROTATOR_ALLOW_INSECURE_LOOPBACK: is not a boolean (true or false)")
		}
		c.AllowInsecureLoopback = b
	}
}
