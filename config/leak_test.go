package config

import (
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// pasted is what a user copies from the Developer Console: a client secret.
const pasted = "amzn1.oa2-cs.v1.5f0c1e9a7b3d4c2e8f6a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"

// pastedTail is the secret's random part, pasted without its prefix.
const pastedTail = "5f0c1e9a7b3d4c2e8f6a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"

// leafPaths lists every field a configuration file can set, as dotted paths with [0] for lists
// and .na for the region map, so a new field is covered by the leak tests without editing them.
func leafPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("yaml")
		if !ok {
			continue
		}
		path := join(prefix, strings.Split(tag, ",")[0])
		switch ft := f.Type; {
		case ft == reflect.TypeOf(Duration(0)):
			out = append(out, path)
		case ft.Kind() == reflect.Struct:
			out = append(out, leafPaths(ft, path)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, leafPaths(ft.Elem(), path+"[0]")...)
		case ft.Kind() == reflect.Slice:
			out = append(out, path+"[0]")
		case ft.Kind() == reflect.Map:
			out = append(out, path+".na")
		default:
			out = append(out, path)
		}
	}
	return out
}

// setPath puts value at path in the YAML mapping tree doc (created from good), replacing what is
// there.
func setPath(t *testing.T, doc map[string]any, path, value string) {
	t.Helper()
	parts := strings.Split(path, ".")
	cur := doc
	for i, part := range parts {
		last := i == len(parts)-1
		name, isList := strings.CutSuffix(part, "[0]")
		switch {
		case isList && last:
			cur[name] = []any{value}
		case isList:
			list, _ := cur[name].([]any)
			if len(list) == 0 {
				list = []any{map[string]any{}}
			}
			m, _ := list[0].(map[string]any)
			cur[name] = list
			cur = m
		case last:
			cur[name] = value
		default:
			m, ok := cur[name].(map[string]any)
			if !ok {
				m = map[string]any{}
				cur[name] = m
			}
			cur = m
		}
	}
}

func assertNoValue(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, pasted) || strings.Contains(out, pastedTail) || strings.Contains(out, pastedTail[:24]) {
		t.Fatalf("the pasted secret appears in the output:\n%s", out)
	}
}

func TestSecretInEveryFieldIsReportedNeverEchoed(t *testing.T) {
	t.Parallel()
	paths := leafPaths(reflect.TypeOf(Config{}), "")
	if len(paths) < 20 {
		t.Fatalf("found only %d fields: the walk over the configuration type is broken", len(paths))
	}
	for _, path := range paths {
		for _, value := range []string{pasted, pastedTail, "https://sqs.example.com/" + pasted} {
			t.Run(path, func(t *testing.T) {
				t.Parallel()
				var doc map[string]any
				if err := yaml.Unmarshal([]byte(good), &doc); err != nil {
					t.Fatal(err)
				}
				setPath(t, doc, path, value)
				raw, err := yaml.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				_, err = Parse(raw, nil)
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
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(raw), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			assertNoValue(t, err.Error())
		})
	}
}

func TestSecretInEveryEnvironmentOverrideIsNeverEchoed(t *testing.T) {
	t.Parallel()
	for _, e := range Env {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(good), env(map[string]string{e.Name: pasted}))
			if err == nil {
				t.Fatalf("a secret in %s was accepted", e.Name)
			}
			assertNoValue(t, err.Error())
			if !strings.Contains(err.Error(), e.Name+": looks like a client secret") {
				t.Fatalf("the error does not name %s:\n%v", e.Name, err)
			}
		})
	}
	_, err := Load(pasted, nil)
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
	_, err := Parse([]byte(raw), nil)
	ve, ok := err.(*ValidationError)
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
	_, err := Parse([]byte(raw), nil)
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
		raw := strings.Replace(good, "region: na", "region: "+tc.region, 1)
		_, err := Parse([]byte(raw), nil)
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
		raw := strings.Replace(good, "queues:\n", "queues:\n  rejectedRetry: "+tc.rejected+"\n  visibilityTimeout: "+tc.visibility+"\n", 1)
		_, err := Parse([]byte(raw), nil)
		if (err == nil) != tc.ok {
			t.Errorf("rejectedRetry %s with visibility %s: err = %v, want ok = %v", tc.rejected, tc.visibility, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "queues.rejectedRetry") {
			t.Errorf("error does not name queues.rejectedRetry: %v", err)
		}
	}
}
