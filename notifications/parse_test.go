package notifications

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const (
	fixtureSecret   = "amzn1.oa2-cs.v1.8b6XXXXXXXXXXXXXXXXXXXXXXXXX"
	newSecretPrefix = "payload." + keyNewSecret + "."
	expiryPrefix    = "payload." + keyExpiry + "."
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return b
}

// mutate decodes a fixture, lets edit change it, and re-encodes it.
func mutate(t *testing.T, name string, edit func(top, inner map[string]any)) []byte {
	t.Helper()
	var top map[string]any
	if err := json.Unmarshal(fixture(t, name), &top); err != nil {
		t.Fatalf("decoding fixture: %v", err)
	}
	var inner map[string]any
	for _, v := range top["payload"].(map[string]any) {
		inner = v.(map[string]any)
	}
	edit(top, inner)
	b, err := json.Marshal(top)
	if err != nil {
		t.Fatalf("encoding fixture: %v", err)
	}
	return b
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseExamples(t *testing.T) {
	t.Parallel()
	n, err := Parse(fixture(t, "expiry.json"))
	if err != nil {
		t.Fatalf("Parse(expiry): %v", err)
	}
	exp, ok := n.(*ExpiryNotice)
	if !ok {
		t.Fatalf("Parse(expiry) = %T, want *ExpiryNotice", n)
	}
	wantEnv := Envelope{Type: TypeExpiry, EventTime: mustTime(t, "2024-01-10T02:15:10.045Z"), Metadata: Metadata{
		ApplicationID:  "amzn1.sp.solution.xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		SubscriptionID: "a275c00d-260c-4xxxxxxxxxxxf25",
		NotificationID: "e7e27216-4970-477a-882c-e4xxxxxxxxxxxxxdc",
		PublishTime:    mustTime(t, "2024-01-10T02:15:14.269Z"),
	}, NotificationVersion: NotificationVersion, PayloadVersion: PayloadVersion}
	if exp.Meta() != wantEnv {
		t.Errorf("expiry envelope = %+v, want %+v", exp.Meta(), wantEnv)
	}
	if exp.ClientID != "amzn1.application-oa2-client.xxxxxxxxxxxxxxxxxxxxxxxxxxxx" || exp.Reason != "PERIODIC_ROTATION" ||
		!exp.ExpiresAt.Equal(mustTime(t, "2024-03-03T22:06:39.224Z")) {
		t.Errorf("expiry payload = %+v", exp)
	}

	n, err = Parse(fixture(t, "new_secret.json"))
	if err != nil {
		t.Fatalf("Parse(new secret): %v", err)
	}
	ns, ok := n.(*NewSecret)
	if !ok {
		t.Fatalf("Parse(new secret) = %T, want *NewSecret", n)
	}
	if got := ns.Meta(); got.Type != TypeNewSecret || got.Metadata.NotificationID != "b0805eb9-78f7-49bb-ac0e-XXXXXXXXXXX" ||
		!got.EventTime.Equal(mustTime(t, "2024-01-10T22:09:17.456Z")) || got.Metadata.ApplicationID != "amzn1.sp.solution.6XXXXXXXXXXXXXXXXXXXXXXXXX" {
		t.Errorf("new secret envelope = %+v", got)
	}
	if ns.ClientID != "amzn1.application-oa2-client.6XXXXXXXXXXXXXXXXXXXXXXXXX" || ns.Secret.Reveal() != fixtureSecret ||
		!ns.ExpiresAt.Equal(mustTime(t, "2024-07-08T22:09:17.198Z")) || !ns.OldExpiresAt.Equal(mustTime(t, "2024-01-17T22:09:17.180Z")) {
		t.Errorf("new secret payload = %+v", ns)
	}
}

func TestParseAcceptsVariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body func(t *testing.T) []byte
		want func(t *testing.T, n Notification)
	}{
		{"reason absent", func(t *testing.T) []byte {
			return mutate(t, "expiry.json", func(_, in map[string]any) { delete(in, "clientSecretExpiryReason") })
		}, func(t *testing.T, n Notification) {
			if r := n.(*ExpiryNotice).Reason; r != "" {
				t.Errorf("Reason = %q, want empty", r)
			}
		}},
		{"unknown keys ignored", func(t *testing.T) []byte {
			return mutate(t, "new_secret.json", func(top, in map[string]any) { top["extra"] = []any{1}; in["more"] = true })
		}, func(t *testing.T, n Notification) {
			if s := n.(*NewSecret).Secret.Reveal(); s != fixtureSecret {
				t.Errorf("secret changed")
			}
		}},
		{"offset time", func(t *testing.T) []byte {
			return mutate(t, "expiry.json", func(_, in map[string]any) { in["clientSecretExpiryTime"] = "2024-03-03T23:06:39+01:00" })
		}, func(t *testing.T, n Notification) {
			if got := n.(*ExpiryNotice).ExpiresAt; !got.Equal(mustTime(t, "2024-03-03T22:06:39Z")) {
				t.Errorf("ExpiresAt = %v", got)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := Parse(tc.body(t))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tc.want(t, n)
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	ns := func(edit func(top, in map[string]any)) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return mutate(t, "new_secret.json", edit) }
	}
	ex := func(edit func(top, in map[string]any)) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return mutate(t, "expiry.json", edit) }
	}
	raw := func(s string) func(*testing.T) []byte { return func(*testing.T) []byte { return []byte(s) } }
	replace := func(old, new string) func(*testing.T) []byte {
		return func(t *testing.T) []byte {
			b := fixture(t, "new_secret.json")
			if !strings.Contains(string(b), old) {
				t.Fatalf("fixture lacks %q", old)
			}
			return []byte(strings.Replace(string(b), old, new, 1))
		}
	}
	tests := []struct {
		name  string
		body  func(*testing.T) []byte
		kind  error
		field string
	}{
		{"empty body", raw(""), ErrMalformed, ""},
		{"truncated", raw(`{"notificationVersion":"1.0"`), ErrMalformed, ""},
		{"array", raw(`[{"notificationVersion":"1.0"}]`), ErrMalformed, ""},
		{"null", raw(`null`), ErrMalformed, ""},
		{"trailing data", func(t *testing.T) []byte { return append(fixture(t, "new_secret.json"), " {}"...) }, ErrMalformed, ""},
		{"invalid utf-8", replace(fixtureSecret, fixtureSecret+"\xff"), ErrMalformed, ""},
		{"duplicate secret key", replace(`"newClientSecret":`, `"newClientSecret": "amzn1.oa2-cs.v1.planted", "newClientSecret":`), ErrMalformed, "payload." + keyNewSecret},
		{"case variant key", replace(`"newClientSecret":`, `"NewClientSecret":`), ErrMissingField, newSecretPrefix + "newClientSecret"},
		{"version as number", ns(func(top, _ map[string]any) { top["notificationVersion"] = 1.0 }), ErrMalformed, "notificationVersion"},
		{"sns subscription confirmation", raw(`{"Type":"SubscriptionConfirmation","Message":"You have chosen to subscribe","TopicArn":"arn:aws:sns:us-east-1:1:t"}`), ErrMalformed, "Type"},
		{"sns message not a string", raw(`{"Type":"Notification","Message":{"notificationVersion":"1.0"}}`), ErrMalformed, "Message"},
		{"sns message with a lone surrogate", raw(`{"Type":"Notification","Message":"{\"a\":\"\ud800\"}"}`), ErrMalformed, "Message"},
		{"sns message malformed inside", func(t *testing.T) []byte {
			return snsEnvelope(t, []byte(strings.Replace(string(fixture(t, "new_secret.json")), `"clientId"`, `"clientID"`, 1)))
		}, ErrMissingField, "Message." + newSecretPrefix + "clientId"},
		{"unknown type", ns(func(top, _ map[string]any) { top["notificationType"] = "ANY_OFFER_CHANGED" }), ErrUnknownType, "notificationType"},
		{"type missing", ns(func(top, _ map[string]any) { delete(top, "notificationType") }), ErrMissingField, "notificationType"},
		{"type and payload disagree", ns(func(top, _ map[string]any) { top["notificationType"] = TypeExpiry }), ErrMissingField, "payload." + keyExpiry},
		{"event time not rfc3339", ns(func(top, _ map[string]any) { top["eventTime"] = "2024-01-10 22:09:17Z" }), ErrBadTime, "eventTime"},
		{"event time epoch", ns(func(top, _ map[string]any) { top["eventTime"] = 1704924557 }), ErrMalformed, "eventTime"},
		{"metadata missing", ns(func(top, _ map[string]any) { delete(top, "notificationMetadata") }), ErrMissingField, "notificationMetadata"},
		{"metadata not object", ns(func(top, _ map[string]any) { top["notificationMetadata"] = "x" }), ErrMalformed, "notificationMetadata"},
		{"notification id empty", ns(func(top, _ map[string]any) {
			top["notificationMetadata"].(map[string]any)["notificationId"] = ""
		}), ErrMissingField, "notificationMetadata.notificationId"},
		{"notification id null", ns(func(top, _ map[string]any) {
			top["notificationMetadata"].(map[string]any)["notificationId"] = nil
		}), ErrMissingField, "notificationMetadata.notificationId"},
		{"publish time bad", ns(func(top, _ map[string]any) {
			top["notificationMetadata"].(map[string]any)["publishTime"] = "soon"
		}), ErrBadTime, "notificationMetadata.publishTime"},
		{"payload missing", ns(func(top, _ map[string]any) { delete(top, "payload") }), ErrMissingField, "payload"},
		{"secret missing", ns(func(_, in map[string]any) { delete(in, "newClientSecret") }), ErrMissingField, newSecretPrefix + "newClientSecret"},
		{"secret empty", ns(func(_, in map[string]any) { in["newClientSecret"] = "" }), ErrMissingField, newSecretPrefix + "newClientSecret"},
		{"secret not a string", ns(func(_, in map[string]any) { in["newClientSecret"] = []any{fixtureSecret} }), ErrMalformed, newSecretPrefix + "newClientSecret"},
		{"client id missing", ns(func(_, in map[string]any) { delete(in, "clientId") }), ErrMissingField, newSecretPrefix + "clientId"},
		{"new expiry bad", ns(func(_, in map[string]any) { in["newClientSecretExpiryTime"] = fixtureSecret }), ErrBadTime, newSecretPrefix + "newClientSecretExpiryTime"},
		{"old expiry missing", ns(func(_, in map[string]any) { delete(in, "oldClientSecretExpiryTime") }), ErrMissingField, newSecretPrefix + "oldClientSecretExpiryTime"},
		{"expiry time missing", ex(func(_, in map[string]any) { delete(in, "clientSecretExpiryTime") }), ErrMissingField, expiryPrefix + "clientSecretExpiryTime"},
		{"reason not a string", ex(func(_, in map[string]any) { in["clientSecretExpiryReason"] = 7 }), ErrMalformed, expiryPrefix + "clientSecretExpiryReason"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := Parse(tc.body(t))
			if err == nil {
				t.Fatalf("Parse succeeded with %T, want %v", n, tc.kind)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if !errors.Is(err, tc.kind) || pe.Field != tc.field {
				t.Errorf("got %v (field %q), want kind %v at %q", err, pe.Field, tc.kind, tc.field)
			}
			if n != nil {
				t.Errorf("Parse returned %T alongside an error", n)
			}
			if strings.Contains(err.Error(), "8b6XXX") || strings.Contains(err.Error(), "planted") {
				t.Errorf("error leaks the secret: %s", err)
			}
		})
	}
}

func TestClientIDOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"new secret", string(fixture(t, "new_secret.json")), "amzn1.application-oa2-client.6XXXXXXXXXXXXXXXXXXXXXXXXX"},
		{"expiry", string(fixture(t, "expiry.json")), "amzn1.application-oa2-client.xxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
		{"unparseable version", `{"notificationVersion":"9","payload":{"applicationOAuthClientNewSecret":{"clientId":"c1"}}}`, "c1"},
		{"not json", `{"payload":`, ""},
		{"no payload", `{}`, ""},
		{"client id not a string", `{"payload":{"applicationOAuthClientSecretExpiry":{"clientId":5}}}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ClientIDOf([]byte(tc.body)); got != tc.want {
				t.Errorf("ClientIDOf = %q, want %q", got, tc.want)
			}
		})
	}
}

// snsEnvelope wraps a notification the way SNS delivers it to SQS without raw message delivery.
func snsEnvelope(t testing.TB, body []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"Type": "Notification", "MessageId": "5f1d3a0e-0000-4000-8000-000000000001",
		"TopicArn": "arn:aws:sns:us-east-1:123456789012:sp-api-notifications", "Message": string(body),
		"Timestamp": "2024-01-10T22:09:18.000Z", "SignatureVersion": "1", "Signature": "c2ln",
		"SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseIsLenientAboutVersionsAndSNS: other versions and an SNS envelope still yield the
// notification, with the Envelope saying so; the payload itself stays as strict as ever.
func TestParseIsLenientAboutVersionsAndSNS(t *testing.T) {
	t.Parallel()
	edit := func(name string, f func(top map[string]any)) func(*testing.T) []byte {
		return func(t *testing.T) []byte {
			var top map[string]any
			if err := json.Unmarshal(fixture(t, name), &top); err != nil {
				t.Fatal(err)
			}
			f(top)
			b, err := json.Marshal(top)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	same := func(map[string]any) {}
	for _, tc := range []struct {
		name                       string
		body                       func(*testing.T) []byte
		wantUnknown, wantSNS       bool
		wantNotifVer, wantPayloadV string
	}{
		{"documented", edit("new_secret.json", same), false, false, "1.0", "2023-11-30"},
		{"payload version 1.0", edit("new_secret.json", func(top map[string]any) { top["payloadVersion"] = "1.0" }), true, false, "1.0", "1.0"},
		{"future versions", edit("expiry.json", func(top map[string]any) { top["notificationVersion"], top["payloadVersion"] = "2.0", "2031-01-01" }), true, false, "2.0", "2031-01-01"},
		{"versions absent", edit("expiry.json", func(top map[string]any) { delete(top, "notificationVersion"); delete(top, "payloadVersion") }), true, false, "", ""},
		{"sns envelope", func(t *testing.T) []byte { return snsEnvelope(t, fixture(t, "new_secret.json")) }, false, true, "1.0", "2023-11-30"},
		{"sns envelope, unknown version", func(t *testing.T) []byte {
			return snsEnvelope(t, edit("expiry.json", func(top map[string]any) { top["payloadVersion"] = "1.0" })(t))
		}, true, true, "1.0", "1.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := Parse(tc.body(t))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			m := n.Meta()
			if m.UnknownVersion() != tc.wantUnknown || m.ViaSNS != tc.wantSNS || m.NotificationVersion != tc.wantNotifVer || m.PayloadVersion != tc.wantPayloadV {
				t.Errorf("envelope = unknown %v, sns %v, versions %q/%q; want %v, %v, %q/%q", m.UnknownVersion(), m.ViaSNS,
					m.NotificationVersion, m.PayloadVersion, tc.wantUnknown, tc.wantSNS, tc.wantNotifVer, tc.wantPayloadV)
			}
			if ns, ok := n.(*NewSecret); ok && !ns.Secret.Equal(secret.New(fixtureSecret)) {
				t.Error("the secret inside differs from the fixture's")
			}
		})
	}
}
