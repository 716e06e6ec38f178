package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/testsupport/configtest"
)

const (
	pasted     = configtest.Pasted
	pastedTail = configtest.PastedTail
)

// valid is a file with no problem, into which each test puts one.
const valid = `
listen: 127.0.0.1:9000
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

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func assertNoValue(t *testing.T, out string) {
	t.Helper()
	if configtest.Leaks(out) {
		t.Fatalf("the pasted secret appears in the output:\n%s", out)
	}
}

func TestSecretInEveryFieldIsReportedNeverEchoed(t *testing.T) {
	t.Parallel()
	paths := configtest.FieldPaths()
	if len(paths) < 20 {
		t.Fatalf("found only %d fields: the walk over the configuration type is broken", len(paths))
	}
	for _, want := range []string{"rotationWindow.timeZone", "rotationWindow.open[0]", "rotationWindow.safetyMargin",
		"applications[0].rotationWindow.timeZone", "applications[0].rotationWindow.open[0]", "applications[0].rotationWindow.safetyMargin"} {
		if !slices.Contains(paths, want) {
			t.Errorf("the walk misses %s", want)
		}
	}
	for _, path := range paths {
		for _, value := range []string{pasted, pastedTail, "https://sqs.example.com/" + pasted} {
			t.Run(path, func(t *testing.T) {
				t.Parallel()
				raw, err := configtest.Set([]byte(valid), path, value)
				if err != nil {
					t.Fatal(err)
				}
				_, err = config.Parse(raw, nil)
				if err == nil {
					t.Fatalf("a secret in %s was accepted", path)
				}
				assertNoValue(t, err.Error())
				want := strings.TrimSuffix(path, ".na")
				if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "looks like a client secret") {
					t.Fatalf("the error does not name %s as holding a secret:\n%v", want, err)
				}
			})
		}
	}
}

func TestSecretAsAKeyOrInAWrongTypeIsNeverEchoed(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"as a top-level key":        pasted + ": x\n",
		"as an application key":     "applications:\n  - name: a\n    " + pasted + ": x\n",
		"as a list where a string":  "listen: [" + pasted + "]\n",
		"in a mapping of a string":  "logLevel: {" + pasted + ": 1}\n",
		"tail as key":               pastedTail + ": 1\n",
		"in a broken line":          "listen: \"" + pasted + "\n",
		"in a flow with bad syntax": "applications: [" + pasted + ", {]\n",
		"as a duplicate key":        "logLevel: info\nlogLevel: " + pasted + "\n",
		"in a window's range":       "rotationWindow:\n  timeZone: UTC\n  open: [\"Mon 09:00-10:00 " + pasted + "\"]\n",
		"among a range's days":      "rotationWindow:\n  timeZone: UTC\n  open: [\"Mon," + pastedTail + " 09:00-10:00\"]\n",
		"as a window's time zone":   "rotationWindow: {timeZone: " + pastedTail + ", open: [\"Mon 09:00-10:00\"]}\n",
		"as a window's open list":   "rotationWindow: {timeZone: UTC, open: " + pasted + "}\n",
		"as a window's margin":      "rotationWindow: {timeZone: UTC, open: [\"Mon 09:00-10:00\"], safetyMargin: " + pasted + "}\n",
		"as a whole window":         "rotationWindow: " + pasted + "\n",
		"as an application's range": "applications:\n  - name: a\n    rotationWindow: {timeZone: UTC, open: [" + pasted + "]}\n",
		"as an application's zone":  "applications:\n  - name: a\n    rotationWindow: {timeZone: \"" + pasted + "\", open: [\"Mon 09:00-10:00\"]}\n",
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(raw), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			assertNoValue(t, err.Error())
		})
	}
}

func TestSecretInEveryEnvironmentOverrideIsNeverEchoed(t *testing.T) {
	t.Parallel()
	for _, e := range config.Env {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(valid), envOf(map[string]string{e.Name: pasted}))
			if err == nil {
				t.Fatalf("a secret in %s was accepted", e.Name)
			}
			assertNoValue(t, err.Error())
			if !strings.Contains(err.Error(), e.Name+": looks like a client secret") {
				t.Fatalf("the error does not name %s:\n%v", e.Name, err)
			}
		})
	}
	_, err := config.Load(pasted, nil)
	if err == nil {
		t.Fatal("a secret as the config path was read")
	}
	assertNoValue(t, err.Error())
}

func TestUnknownKeyAndFiveOtherMistakesAllReported(t *testing.T) {
	t.Parallel()
	raw := `
logLevel: loud
renewBefore: soon
kmsKeyId: not a key
queues:
  expiry: https://sqs.us-east-1.amazonaws.com/123456789012/expiry
  newSecret: https://sqs.us-east-1.amazonaws.com/123456789012/new
applications:
  - name: main-app
    clientId: amzn1.application-oa2-client.aaaa
    clientSecret: x
    region: us
    secretId: lwa/main-app
    applicationId: nope
`
	_, err := config.Parse([]byte(raw), nil)
	ve, ok := err.(*config.ValidationError)
	if !ok {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	wants := []string{
		"applications[0].clientSecret (line 11): unknown key; a client secret or token never goes in this file",
		"logLevel (line 2):", "renewBefore (line 3): not a duration", "kmsKeyId (line 4): is not a KMS key",
		"applications[0].region (line 12):", "applications[0].applicationId (line 14):",
	}
	if len(ve.Problems) != len(wants) {
		t.Errorf("got %d problems, want %d:\n%v", len(ve.Problems), len(wants), err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	for _, v := range []string{"soon", "not a key", "nope"} {
		if strings.Contains(err.Error(), v) {
			t.Errorf("the error repeats the value %q:\n%v", v, err)
		}
	}
}

func TestWrongTypesAndSyntaxErrorsWithLinesBesideValidation(t *testing.T) {
	t.Parallel()
	raw := `
listen: [a, b]
renewBefore: {x: 1}
allowInsecureLoopback: perhaps
kmsKeyId: "unclosed
queues: 3
applications: one
logLevel: loud
`
	_, err := config.Parse([]byte(raw), nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{
		"listen (line 2): must be a single value, not a list", "renewBefore (line 3): must be a duration",
		"allowInsecureLoopback (line 4): must be true or false", "YAML syntax error", "queues (line 6): must be a mapping",
		"applications (line 7): must be a list", "logLevel (line 8): \"loud\" is not one of",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

func TestValuesShownOnlyInTheirFieldsAlphabet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		region string
		shown  bool
	}{{"us", true}, {"US-1", false}, {"amzn1.x", false}, {strings.Repeat("a", 9), false}}
	for _, tc := range tests {
		raw := strings.Replace(valid, "region: na", "region: "+tc.region, 1)
		_, err := config.Parse([]byte(raw), nil)
		if err == nil {
			t.Fatalf("region %q accepted", tc.region)
		}
		if got := strings.Contains(err.Error(), `"`+tc.region+`"`); got != tc.shown {
			t.Errorf("region %q shown = %v, want %v: %v", tc.region, got, tc.shown, err)
		}
	}
}

func TestRejectedRetryLeavesRoomUnderSQSTwelveHours(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rejected, visibility string
		ok                   bool
	}{{"12h", "60s", false}, {"11h58m", "60s", true}, {"11h59m", "60s", false}, {"11h", "1h", false}, {"10h", "1h", true}, {"15m", "60s", true}}
	for _, tc := range tests {
		raw := strings.Replace(valid, "queues:\n", "queues:\n  rejectedRetry: "+tc.rejected+"\n  visibilityTimeout: "+tc.visibility+"\n", 1)
		_, err := config.Parse([]byte(raw), nil)
		if (err == nil) != tc.ok {
			t.Errorf("rejectedRetry %s with visibility %s: err = %v, want ok = %v", tc.rejected, tc.visibility, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "queues.rejectedRetry") {
			t.Errorf("error does not name queues.rejectedRetry: %v", err)
		}
	}
}
