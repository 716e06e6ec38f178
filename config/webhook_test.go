package config

import (
	"strings"
	"testing"
	"time"
)

func withWebhook(block string) string {
	return good + "    webhook:\n" + block
}

func TestWebhookBlock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, block string
		loopback    bool
		problem     string // "" when valid
	}{
		{"https with a file key", "      url: https://hooks.example.com/lwa\n      hmacKeyFile: /run/secrets/hmac\n", false, ""},
		{"https with a secret key", "      url: https://hooks.example.com/lwa\n      hmacKeySecretId: lwa/webhook-key\n      retryFor: 2d\n", false, ""},
		{"loopback http when allowed", "      url: http://127.0.0.1:8080/hook\n      hmacKeyFile: /k\n", true, ""},
		{"loopback http not allowed", "      url: http://127.0.0.1:8080/hook\n      hmacKeyFile: /k\n", false, "applications[0].webhook.url (line 17): uses plain http"},
		{"remote http", "      url: http://hooks.example.com/\n      hmacKeyFile: /k\n", true, "applications[0].webhook.url (line 17): uses plain http"},
		{"credentials in the URL", "      url: https://user:pw@hooks.example.com/\n      hmacKeyFile: /k\n", false, "applications[0].webhook.url (line 17): must not carry a user name or password"},
		{"no url", "      hmacKeyFile: /k\n", false, "applications[0].webhook.url: required when the webhook block is set"},
		{"no key", "      url: https://hooks.example.com/\n", false, "applications[0].webhook (line 17): needs hmacKeySecretId or hmacKeyFile"},
		{"two keys", "      url: https://hooks.example.com/\n      hmacKeyFile: /k\n      hmacKeySecretId: lwa/k\n", false, "set only one of hmacKeySecretId and hmacKeyFile"},
		{"relative key file", "      url: https://hooks.example.com/\n      hmacKeyFile: key.txt\n", false, "applications[0].webhook.hmacKeyFile (line 18): must be an absolute path"},
		{"bad secret id", "      url: https://hooks.example.com/\n      hmacKeySecretId: 'not a secret id'\n", false, "applications[0].webhook.hmacKeySecretId (line 18): is not a Secrets Manager secret name or ARN"},
		{"the LWA secret as key", "      url: https://hooks.example.com/\n      hmacKeySecretId: lwa/main-app\n", false, "applications[0].webhook.hmacKeySecretId (line 18): names an application's LWA secret"},
		{"retryFor too long", "      url: https://hooks.example.com/\n      hmacKeyFile: /k\n      retryFor: 8d\n", false, "applications[0].webhook.retryFor (line 19): 192h0m0s must be between 1m and 7d"},
		{"unknown key", "      url: https://hooks.example.com/\n      hmacKeyFile: /k\n      hmacKey: x\n", false, "applications[0].webhook.hmacKey (line 19): unknown key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := withWebhook(tc.block)
			if tc.loopback {
				raw += "allowInsecureLoopback: true\n"
			}
			c, err := Parse([]byte(raw), nil)
			if tc.problem == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if w := c.Applications[0].Webhook; !w.Enabled() || w.RetryFor.D() < 24*time.Hour {
					t.Fatalf("webhook not read, or retryFor without its default: %+v", w)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.problem) {
				t.Fatalf("missing %q in:\n%v", tc.problem, err)
			}
			for _, v := range []string{"user:pw", "not a secret id", "key.txt", "hooks.example.com"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("the error repeats the value %q:\n%v", v, err)
				}
			}
		})
	}
}

func TestNoWebhookByDefault(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Applications[0].Webhook; w.Enabled() || w != (Webhook{}) {
		t.Fatalf("a webhook appeared from nowhere: %+v", w)
	}
}
