package notifications

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// vocabulary is every text an error may legitimately contain. An input string that is part of it
// (a fuzzed secret such as "payload") can show up in an error by coincidence, not by quoting.
var vocabulary = strings.Join([]string{
	"parsing notification: ", " at ", ": ", ".",
	ErrMalformed.Error(), ErrUnknownType.Error(), ErrMissingField.Error(), ErrBadTime.Error(), errSNSNotMessage.Error(), "Message", "Type",
	errNotJSON.Error(), errNotUTF8.Error(), errNotObject.Error(), errNotString.Error(), errDuplicateKey.Error(),
	errAbsent.Error(), errEmpty.Error(), errNotRFC3339.Error(),
	errWantKnownType.Error(),
	"notificationVersion", "payloadVersion", "notificationType", "eventTime", "notificationMetadata", "applicationId",
	"subscriptionId", "notificationId", "publishTime", "payload", keyExpiry, keyNewSecret, "clientId",
	"clientSecretExpiryTime", "clientSecretExpiryReason", "newClientSecret", "newClientSecretExpiryTime",
	"oldClientSecretExpiryTime",
}, "\n")

var quoted = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)

// inputStrings collects every string in the body: decoded when it is JSON, else each quoted run.
func inputStrings(body []byte) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case map[string]any:
			for k, e := range v {
				out = append(out, k)
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	var v any
	if json.Unmarshal(body, &v) == nil {
		walk(v)
	}
	for _, m := range quoted.FindAllSubmatch(body, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"expiry.json", "new_secret.json"} {
		b := fixture(f, name)
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add([]byte(strings.Replace(string(b), `"1.0"`, `"1.1"`, 1)))
		f.Add([]byte(strings.Replace(string(b), `"2023-11-30"`, `"1.0"`, 1)))
		f.Add(snsEnvelope(f, b))
		f.Add([]byte(strings.Replace(string(b), `Z"`, `"`, 1)))
		f.Add([]byte(strings.Replace(string(b), `"clientId"`, `"clientId":null,"x"`, 1)))
		f.Add([]byte(strings.Replace(string(b), `"newClientSecret"`, `"newClientSecret":"dup","newClientSecret"`, 1)))
		f.Add([]byte(strings.Replace(string(b), `"amzn1.oa2-cs.v1.`, `["amzn1.oa2-cs.v1.`, 1)))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte("{\"payload\":\xff}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := Parse(body)
		if err == nil {
			if n == nil {
				t.Fatal("Parse returned neither a notification nor an error")
			}
			if !json.Valid(body) {
				t.Fatal("Parse accepted invalid JSON")
			}
			if ns, ok := n.(*NewSecret); ok && ns.Secret.IsZero() {
				t.Fatal("Parse accepted an empty secret")
			}
			return
		}
		var pe *ParseError
		if !errors.As(err, &pe) || n != nil {
			t.Fatalf("Parse = (%T, %T), want (nil, *ParseError)", n, err)
		}
		msg := err.Error()
		for _, s := range inputStrings(body) {
			if len(s) >= 3 && strings.Contains(msg, s) && !strings.Contains(vocabulary, s) {
				t.Fatalf("error %q quotes input string %q", msg, s)
			}
		}
	})
}
