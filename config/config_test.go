package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const good = `
listen: 127.0.0.1:9000
logLevel: debug
renewBefore: 20d
awaitDeadline: 30m
kmsKeyId: alias/lwa-rotator
queues:
  expiry: https://sqs.us-east-1.amazonaws.com/123456789012/expiry
  newSecret: https://sqs.us-east-1.amazonaws.com/123456789012/new-secret
applications:
  - name: main-app
    clientId: amzn1.application-oa2-client.aaaa
    region: na
    secretId: lwa/main-app
    applicationId: amzn1.sp.solution.bbbb
`

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseGoodFile(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(good), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.RenewBefore.D() != 20*24*time.Hour || c.AwaitDeadline.D() != 30*time.Minute {
		t.Fatalf("durations: %v %v", c.RenewBefore.D(), c.AwaitDeadline.D())
	}
	if c.SecretFormat != DefaultSecretFormat {
		t.Fatalf("secretFormat default = %q", c.SecretFormat)
	}
	a, ok := c.Application("amzn1.application-oa2-client.aaaa")
	if !ok || a.Name != "main-app" || a.Region != "na" {
		t.Fatalf("Application lookup = %+v, %v", a, ok)
	}
	if _, ok := c.Application("amzn1.application-oa2-client.nope"); ok {
		t.Fatal("unknown client id found")
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	min := `
kmsKeyId: alias/k
queues: {expiry: "https://q/e", newSecret: "https://q/n"}
applications: [{name: a, clientId: amzn1.application-oa2-client.x, region: eu, secretId: s}]
`
	c, err := Parse([]byte(min), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Listen != DefaultListen || c.LogLevel != "info" || c.RenewBefore.D() != DefaultRenewBefore || c.AwaitDeadline.D() != DefaultAwaitDeadline ||
		c.RequestPollInterval.D() != DefaultRequestPollInterval {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestEveryProblemReportedAtOnce(t *testing.T) {
	t.Parallel()
	bad := `
listen: nope
logLevel: loud
renewBefore: 200d
requestPollInterval: 100ms
queues: {expiry: "http://sqs.example.com/q"}
secretFormat: xml
endpoints: {spapi: {mars: "https://x"}}
applications:
  - name: "bad name"
    clientId: wrong
    region: us
  - name: b
    clientId: amzn1.application-oa2-client.same
    region: na
    secretId: s
    applicationId: nope
  - name: b
    clientId: amzn1.application-oa2-client.same
    region: na
    secretId: s
`
	_, err := Parse([]byte(bad), nil)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	wants := []string{"listen (line 2):", "logLevel (line 3): \"loud\" is not", "renewBefore (line 4):", "requestPollInterval (line 5):",
		"queues.expiry (line 6):", "plain http", "queues.newSecret: required", "kmsKeyId: required", "secretFormat (line 7): \"xml\"",
		"endpoints.spapi.mars (line 8)", "applications[0].name (line 10): use letters",
		"applications[0].clientId (line 11): does not look like an LWA client id", "applications[0].region (line 12): \"us\" is not",
		"applications[0].secretId: required", "applications[1].applicationId (line 17):",
		"duplicate name", "configured twice", "shared with another application"}
	msg := err.Error()
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q:\n%s", w, msg)
		}
	}
	if len(ve.Problems) < len(wants)-1 { // "plain http" is part of the queues.expiry problem
		t.Errorf("got %d problems, want at least %d", len(ve.Problems), len(wants))
	}
}

func TestUnknownKeysRefusedSoNoSecretSlipsIn(t *testing.T) {
	t.Parallel()
	withSecret := strings.Replace(good, "    region: na\n", "    region: na\n    clientSecret: amzn1.oa2-cs.v1.shh\n", 1)
	_, err := Parse([]byte(withSecret), nil)
	if err == nil || !strings.Contains(err.Error(), "clientSecret") {
		t.Fatalf("want an error naming clientSecret, got %v", err)
	}
	if strings.Contains(err.Error(), "amzn1.oa2-cs.v1.shh") {
		t.Fatalf("error quotes the secret: %v", err)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		check   func(*Config) bool
		wantErr string
	}{
		{"listen", map[string]string{"LWA_ROTATOR_LISTEN": "0.0.0.0:1"}, func(c *Config) bool { return c.Listen == "0.0.0.0:1" }, ""},
		{"renew", map[string]string{"LWA_ROTATOR_RENEW_BEFORE": "10d"}, func(c *Config) bool { return c.RenewBefore.D() == 240*time.Hour }, ""},
		{"queues", map[string]string{"LWA_ROTATOR_EXPIRY_QUEUE_URL": "https://q/x", "LWA_ROTATOR_NEW_SECRET_QUEUE_URL": "https://q/x"},
			func(c *Config) bool { return c.Queues.Expiry == "https://q/x" && c.Queues.NewSecret == "https://q/x" }, ""},
		{"spapi all regions", map[string]string{"LWA_ROTATOR_SPAPI_ENDPOINT": "https://sim"},
			func(c *Config) bool {
				return c.Endpoints.SPAPI["na"] == "https://sim" && c.Endpoints.SPAPI["fe"] == "https://sim"
			}, ""},
		{"loopback http allowed", map[string]string{"LWA_ROTATOR_LWA_ENDPOINT": "http://127.0.0.1:1/auth/o2/token", "LWA_ROTATOR_ALLOW_INSECURE_LOOPBACK": "true"},
			func(c *Config) bool { return c.AllowInsecureLoopback }, ""},
		{"loopback http refused by default", map[string]string{"LWA_ROTATOR_LWA_ENDPOINT": "http://127.0.0.1:1/t"}, nil, "plain http"},
		{"remote http refused even when allowed", map[string]string{"LWA_ROTATOR_LWA_ENDPOINT": "http://10.0.0.1/t", "LWA_ROTATOR_ALLOW_INSECURE_LOOPBACK": "1"}, nil, "plain http"},
		{"bad duration", map[string]string{"LWA_ROTATOR_RENEW_BEFORE": "soon"}, nil, "LWA_ROTATOR_RENEW_BEFORE"},
		{"bad bool", map[string]string{"LWA_ROTATOR_ALLOW_INSECURE_LOOPBACK": "maybe"}, nil, "not a boolean"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(good), env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error with %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tc.check(c) {
				t.Fatalf("override not applied: %+v", c)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, nil); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), nil); err == nil || !strings.Contains(err.Error(), "reading config") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := Parse([]byte("applications: [oops"), nil); err == nil || !strings.Contains(err.Error(), "line 1: YAML syntax error") {
		t.Fatalf("bad yaml: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"30d": 720 * time.Hour, "1.5d": 36 * time.Hour, "90m": 90 * time.Minute} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseDuration("xd"); err == nil {
		t.Error("ParseDuration(xd) succeeded")
	}
}
