package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/internal/daemon/reload"
	"github.com/spapi-tools/lwa-rotator/internal/webhook"
	"github.com/spapi-tools/lwa-rotator/metrics"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// These tests run the daemon's real parts (log level, queues, endpoints, vault, webhooks, rotator,
// listener) under the real coordinator, with the AWS reads behind the vault part faked at its
// narrow interface; the moto-backed tests in reload_test.go run them inside the daemon.

// partsBase is a valid file whose applications come last, so an edit can append one.
const partsBase = `listen: 127.0.0.1:9000
logLevel: info
renewBefore: 30d
kmsKeyId: alias/lwa-rotator
requestPollInterval: 1m
queues:
  expiry: https://sqs.us-east-1.amazonaws.com/123456789012/expiry
  newSecret: https://sqs.us-east-1.amazonaws.com/123456789012/new-secret
endpoints:
  lwa: https://lwa.example.com/auth/o2/token
  spapi:
    na: https://na.spapi.example.com
applications:
  - name: main-app
    clientId: amzn1.application-oa2-client.aaaa
    region: na
    secretId: lwa/main-app
`

// reloadable changes a setting of every part that reloads: the log level, the rotation settings,
// an added application with a webhook.
func reloadable(raw string) string {
	raw = strings.Replace(raw, "logLevel: info", "logLevel: debug", 1)
	raw = strings.Replace(raw, "renewBefore: 30d", "renewBefore: 20d", 1)
	return raw + `  - name: second
    clientId: amzn1.application-oa2-client.bbbb
    region: eu
    secretId: lwa/second
    webhook:
      url: https://hooks.example.com/lwa
      hmacKeySecretId: lwa/second-hook-key
`
}

// fakeSecrets answers the vault part's at-rest and tag-room check from fixed findings.
type fakeSecrets struct {
	mu         sync.Mutex
	violations map[string]string // secret id → encryption finding
	refusals   map[string]string // secret id → tag-room finding
	checked    []string
}

func (f *fakeSecrets) Check(_ context.Context, refs []vault.SecretRef) (violations, refusals []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range refs {
		f.checked = append(f.checked, r.SecretID)
		if v, ok := f.violations[r.SecretID]; ok {
			violations = append(violations, v)
		}
		if v, ok := f.refusals[r.SecretID]; ok {
			refusals = append(refusals, v)
		}
	}
	return violations, refusals, nil
}

// unused stands in for the rotator's vault and Amazon clients: the rotator is built and
// reconfigured here but never run, so none of them is called.
type unused struct {
	rotator.Vault
	rotator.TokenMinter
	rotator.SecretRotator
}

type partsWorld struct {
	c        *reload.Coordinator
	path     string
	level    zap.AtomicLevel
	rot      *rotatorPart
	secrets  *fakeSecrets
	reg      *prometheus.Registry // the daemon's metrics
	webhooks *prometheus.Registry // the webhook notifier's
	logs     *observer.ObservedLogs
}

type worldOptions struct {
	opts          Options
	queueFindings []string
	secrets       *fakeSecrets
}

func newPartsWorld(t *testing.T, w worldOptions) *partsWorld {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	clk := fakeclock.New(time.Unix(1.7e9, 0))
	if w.secrets == nil {
		w.secrets = &fakeSecrets{}
	}
	pw := &partsWorld{path: filepath.Join(t.TempDir(), "config.yaml"), level: zap.NewAtomicLevel(), secrets: w.secrets,
		reg: prometheus.NewRegistry(), webhooks: prometheus.NewRegistry(), logs: logs}
	m := metrics.New(pw.reg, snapshotFunc(func() []rotator.Status { return nil }), func() bool { return true }, "test", "test")
	notifier := webhook.New(webhook.Options{Clock: clk, Log: log, Registerer: pw.webhooks})
	pw.rot = &rotatorPart{log: log, opts: rotator.Options{Vault: unused{}, LWA: unused{}, SPAPI: unused{}, Clock: clk, Log: log}}
	pw.c = reload.New(reload.Options{Path: pw.path, Clock: clk, Log: log, Metrics: m,
		Parts: parts(w.opts, log, &pw.level, w.queueFindings, w.secrets, notifier, pw.rot)})
	return pw
}

func (pw *partsWorld) write(t *testing.T, raw string) {
	t.Helper()
	if err := os.WriteFile(pw.path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start applies raw as the daemon's start-up does.
func (pw *partsWorld) start(t *testing.T, raw string) error {
	t.Helper()
	pw.write(t, raw)
	cfg, err := reload.Load(pw.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pw.c.Apply(context.Background(), cfg)
}

// state is every part's observable state, in words a test can compare.
type state struct {
	level    string
	apps     string // the rotator's applications
	webhooks string // the applications the webhook notifier serves
	renew    time.Duration
}

func (pw *partsWorld) state(t *testing.T) state {
	t.Helper()
	var s state
	s.level = pw.level.String()
	if pw.rot.rot != nil {
		var names []string
		for _, st := range pw.rot.rot.Snapshot() {
			names = append(names, st.App)
		}
		s.apps = strings.Join(names, ",")
	}
	families, err := pw.webhooks.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var hooks []string
	for _, f := range families {
		if f.GetName() == "lwa_rotator_webhook_acknowledged" {
			for _, m := range f.GetMetric() {
				hooks = append(hooks, m.GetLabel()[0].GetValue())
			}
		}
	}
	s.webhooks = strings.Join(hooks, ",")
	if r := pw.c.Running(); r != nil {
		s.renew = r.RenewBefore.D()
	}
	return s
}

// gauge reads one series of the daemon's metrics; ok is false when it does not exist.
func (pw *partsWorld) gauge(t *testing.T, name, part string) (float64, bool) {
	t.Helper()
	families, err := pw.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if part != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != part) {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue(), true
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

var (
	// The state after start-up, and after the reloadable change was applied.
	before = state{level: "info", apps: "main-app", webhooks: "", renew: 30 * 24 * time.Hour}
	after  = state{level: "debug", apps: "main-app,second", webhooks: "second", renew: 20 * 24 * time.Hour}
)

// A change every part accepts reaches every part; the same change with one part refusing reaches
// none of them.
func TestPartsApplyAllOrNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// edit is applied on top of the reloadable change.
		edit        func(string) string
		secrets     *fakeSecrets
		want        state
		wantPart    string // the refusing part; "" when applied
		wantProblem string
	}{
		{"every part accepts", func(s string) string { return s }, nil, after, "", ""},
		{"the queues refuse a moved queue", func(s string) string {
			return strings.Replace(s, "/new-secret", "/new-secret-moved", 1)
		}, nil, before, "queues", "queues.newSecret: changes only on restart"},
		{"the listener refuses a new address", func(s string) string {
			return strings.Replace(s, "listen: 127.0.0.1:9000", "listen: 127.0.0.1:9001", 1)
		}, nil, before, "listener", "listen: changes only on restart"},
		{"the rotator refuses a new request poll", func(s string) string {
			return strings.Replace(s, "requestPollInterval: 1m", "requestPollInterval: 2m", 1)
		}, nil, before, "rotator", "requestPollInterval: changes only on restart"},
		{"the vault refuses the added secret without tag room", func(s string) string { return s },
			&fakeSecrets{refusals: map[string]string{"lwa/second": "secret lwa/second has 45 tags of its own; the daemon needs room for 10 more"}},
			before, "vault", "secret lwa/second has 45 tags of its own"},
		{"the vault refuses the added secret on another key", func(s string) string { return s },
			&fakeSecrets{violations: map[string]string{"lwa/second": "secret lwa/second uses the AWS-managed key, not the configured customer-managed key"}},
			before, "vault", "secret lwa/second uses the AWS-managed key"},
		{"atRest: warn runs the added secret on another key", func(s string) string { return s + "atRest: warn\n" },
			&fakeSecrets{violations: map[string]string{"lwa/second": "secret lwa/second uses the AWS-managed key, not the configured customer-managed key"}},
			after, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pw := newPartsWorld(t, worldOptions{secrets: tc.secrets})
			if err := pw.start(t, partsBase); err != nil {
				t.Fatalf("start-up: %v", err)
			}
			if got := pw.state(t); got != before {
				t.Fatalf("after start-up: %+v, want %+v", got, before)
			}
			pw.write(t, tc.edit(reloadable(partsBase)))

			err := pw.c.Reload(context.Background())

			if got := pw.state(t); got != tc.want {
				t.Errorf("parts run %+v, want %+v", got, tc.want)
			}
			ok, _ := pw.gauge(t, "lwa_rotator_config_last_reload_successful", "")
			if tc.wantPart == "" {
				if err != nil || ok != 1 {
					t.Fatalf("Reload = %v, last_reload_successful %v; want applied", err, ok)
				}
				return
			}
			var re *reload.RefusedError
			if !errors.As(err, &re) || len(re.Parts) != 1 || re.Parts[0].Part != tc.wantPart || !strings.Contains(err.Error(), tc.wantProblem) {
				t.Fatalf("Reload = %v, want a refusal by %s naming %q", err, tc.wantPart, tc.wantProblem)
			}
			if ok != 0 {
				t.Errorf("last_reload_successful = %v after a refusal", ok)
			}
			if n, _ := pw.gauge(t, "lwa_rotator_config_reload_refusals_total", tc.wantPart); n != 1 {
				t.Errorf("refusals_total{part=%q} = %v, want 1", tc.wantPart, n)
			}
			if n := pw.logs.FilterMessage("SIGHUP: configuration reload failed; keeping the running configuration").
				FilterField(zap.String("part", tc.wantPart)).Len(); n == 0 {
				t.Errorf("no refusal line naming part %s", tc.wantPart)
			}
		})
	}
}

// Every restart-only field is refused by the part built from it, naming the field and never its
// old or new value. The rows are literal: a field added to RestartOnlyFields without a row fails.
func TestRestartOnlyFieldsNameTheFieldNeverTheValue(t *testing.T) {
	t.Parallel()
	under := func(section, line string) func(string) string {
		return func(s string) string { return strings.Replace(s, section+":\n", section+":\n  "+line+"\n", 1) }
	}
	replace := func(old, new string) func(string) string {
		return func(s string) string { return strings.Replace(s, old, new, 1) }
	}
	tests := map[string]struct {
		part   string
		edit   func(string) string
		values []string // the old and new values, which the refusal must not repeat
	}{
		"listen":                      {"listener", replace("127.0.0.1:9000", "127.0.0.1:9123"), []string{"9000", "9123"}},
		"queues.expiry":               {"queues", replace("/expiry\n", "/expiry-canary\n"), []string{"sqs.us-east-1", "canary"}},
		"queues.newSecret":            {"queues", replace("/new-secret", "/canary"), []string{"sqs.us-east-1", "canary"}},
		"queues.visibilityTimeout":    {"queues", under("queues", "visibilityTimeout: 97s"), []string{"97s", "1m37s"}},
		"queues.rejectedRetry":        {"queues", under("queues", "rejectedRetry: 17m"), []string{"17m", "15m"}},
		"queues.deadLetterInterval":   {"queues", under("queues", "deadLetterInterval: 3m"), []string{"3m", "1m0s"}},
		"queues.allowedSenderIds":     {"queues", under("queues", "allowedSenderIds: [AIDACANARY1234567]"), []string{"AIDACANARY"}},
		"kmsKeyId":                    {"vault", replace("alias/lwa-rotator", "alias/canary-key"), []string{"alias/"}},
		"secretFormat":                {"vault", func(s string) string { return "secretFormat: lambda-sample\n" + s }, []string{"lambda-sample", "lwa-rotator\n"}},
		"endpoints.lwa":               {"endpoints", replace("lwa.example.com", "canary.example.com"), []string{"example.com"}},
		"endpoints.spapi":             {"endpoints", replace("na.spapi.example.com", "canary.example.com"), []string{"example.com"}},
		"endpoints.rotateInterval":    {"endpoints", under("endpoints", "rotateInterval: 93s"), []string{"93s", "1m33s"}},
		"allowInsecureLoopback":       {"endpoints", func(s string) string { return "allowInsecureLoopback: true\n" + s }, []string{"true"}},
		"requestPollInterval":         {"rotator", replace("requestPollInterval: 1m", "requestPollInterval: 97s"), []string{"97s", "1m37s"}},
		"holder":                      {"rotator", func(s string) string { return "holder: canary-pod-7\n" + s }, []string{"canary-pod-7"}},
		"(a reloadable change alone)": {"", reloadable, nil},
	}
	for _, f := range RestartOnlyFields() {
		if _, ok := tests[f]; !ok {
			t.Errorf("restart-only field %s has no row", f)
		}
	}
	for field, tc := range tests {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			pw := newPartsWorld(t, worldOptions{})
			if err := pw.start(t, partsBase); err != nil {
				t.Fatalf("start-up: %v", err)
			}
			edited := tc.edit(partsBase)
			if edited == partsBase {
				t.Fatal("the edit changed nothing")
			}
			pw.write(t, edited)
			err := pw.c.Reload(context.Background())
			if tc.part == "" {
				if err != nil {
					t.Fatalf("Reload = %v, want applied", err)
				}
				return
			}
			want := "configuration refused by " + tc.part + " (1 problems):\n  - " + tc.part + ": " + field + ": changes only on restart"
			if err == nil || err.Error() != want {
				t.Fatalf("Reload = %v, want\n%s", err, want)
			}
			for _, e := range pw.logs.FilterMessage("SIGHUP: configuration reload failed; keeping the running configuration").All() {
				for _, v := range tc.values {
					if line := e.Message + " " + toJSON(e.ContextMap()); strings.Contains(line, v) {
						t.Errorf("the log line repeats the value %q: %s", v, line)
					}
				}
			}
		})
	}
}

// With --listen the file's listen is not what runs: changing it is no change.
func TestListenFromTheFlagIgnoresTheFile(t *testing.T) {
	t.Parallel()
	pw := newPartsWorld(t, worldOptions{opts: Options{Listen: "127.0.0.1:0"}})
	if err := pw.start(t, partsBase); err != nil {
		t.Fatal(err)
	}
	pw.write(t, strings.Replace(partsBase, "listen: 127.0.0.1:9000", "listen: 127.0.0.1:9001", 1))
	if err := pw.c.Reload(context.Background()); err != nil {
		t.Fatalf("Reload = %v, want applied", err)
	}
}

// Start-up is the first apply: the queues' encryption findings and the secrets' checks refuse it
// as they would a reload, naming the part, and nothing runs.
func TestStartUpRefusalsNameThePart(t *testing.T) {
	t.Parallel()
	queueFinding := []string{"queue https://sqs.us-east-1.amazonaws.com/123456789012/expiry has no server-side encryption (SSE-KMS or SSE-SQS)"}
	tests := []struct {
		name      string
		extra     string
		findings  []string
		secrets   *fakeSecrets
		wantParts []string
		wantAtRst bool
	}{
		{"an unencrypted queue", "", queueFinding, nil, []string{"queues"}, true},
		{"an unencrypted queue with atRest: warn", "atRest: warn\n", queueFinding, nil, nil, false},
		{"a secret without tag room", "", nil,
			&fakeSecrets{refusals: map[string]string{"lwa/main-app": "secret lwa/main-app has 45 tags of its own; the daemon needs room for 10 more"}},
			[]string{"vault"}, false},
		{"both", "", queueFinding,
			&fakeSecrets{violations: map[string]string{"lwa/main-app": "secret lwa/main-app uses the AWS-managed key, not the configured customer-managed key"}},
			[]string{"queues", "vault"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pw := newPartsWorld(t, worldOptions{queueFindings: tc.findings, secrets: tc.secrets})
			err := pw.start(t, tc.extra+partsBase)
			if tc.wantParts == nil {
				if err != nil {
					t.Fatalf("start-up = %v, want it to run", err)
				}
				if pw.logs.FilterMessage("encryption at rest: "+tc.findings[0]).Len() != 1 {
					t.Errorf("atRest: warn did not log the finding")
				}
				if got := pw.state(t); got != before {
					t.Errorf("after start-up: %+v, want %+v", got, before)
				}
				return
			}
			var re *reload.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("start-up = %v, want a refusal", err)
			}
			var got []string
			for _, p := range re.Parts {
				got = append(got, p.Part)
			}
			if !slices.Equal(got, tc.wantParts) {
				t.Errorf("refused by %v, want %v", got, tc.wantParts)
			}
			if errors.Is(err, vault.ErrAtRest) != tc.wantAtRst {
				t.Errorf("errors.Is(err, vault.ErrAtRest) = %v, want %v", !tc.wantAtRst, tc.wantAtRst)
			}
			if tc.wantAtRst && !strings.Contains(err.Error(), "atRest: refuses these encryption findings; atRest: warn logs them and runs") {
				t.Errorf("the refusal does not say how to run anyway: %v", err)
			}
			if pw.c.Running() != nil || pw.rot.rot != nil || pw.level.String() != "info" {
				t.Errorf("a refused start-up applied something: running %v, rotator %v, level %s", pw.c.Running() != nil, pw.rot.rot != nil, pw.level.String())
			}
		})
	}
}

// On a reload only the secrets that are new or point elsewhere are checked again.
func TestReloadChecksOnlyNewSecrets(t *testing.T) {
	t.Parallel()
	pw := newPartsWorld(t, worldOptions{})
	if err := pw.start(t, partsBase); err != nil {
		t.Fatal(err)
	}
	pw.write(t, reloadable(partsBase))
	if err := pw.c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(pw.secrets.checked, ","); got != "lwa/main-app,lwa/second" {
		t.Errorf("secrets checked %s, want lwa/main-app at start-up and lwa/second on the reload", got)
	}
}

// The README's list of what needs a restart is the code's.
func TestREADMEListsEveryRestartOnlyField(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "What needs a restart")
	if !ok {
		t.Fatal("the README has no \"What needs a restart\" paragraph")
	}
	para, _, _ := strings.Cut(rest, "\n\n")
	for _, f := range RestartOnlyFields() {
		name := f
		if section, _, ok := strings.Cut(f, "."); ok {
			name = section + ".*"
		}
		if !strings.Contains(para, "`"+name+"`") && !strings.Contains(para, "`"+f+"`") {
			t.Errorf("the README's restart list does not name %s", f)
		}
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
