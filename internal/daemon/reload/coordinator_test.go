package reload_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/internal/daemon/reload"
	"github.com/spapi-tools/lwa-rotator/metrics"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/testsupport/configtest"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
)

// base is a valid file; each test edits one line of it.
const base = `
listen: 127.0.0.1:9000
logLevel: info
renewBefore: 30d
kmsKeyId: alias/lwa-rotator
queues:
  expiry: https://sqs.us-east-1.amazonaws.com/123456789012/expiry
  newSecret: https://sqs.us-east-1.amazonaws.com/123456789012/new-secret
applications:
  - name: main-app
    clientId: amzn1.application-oa2-client.aaaa
    region: na
    secretId: lwa/main-app
`

// part is a fake owner of settings: it holds the renewBefore and logLevel it was last given, and
// refuses a configuration when refuse says so.
type part struct {
	name   string
	refuse func(running, next *config.Config) error
	// Guarded by the coordinator's contract (Apply and Reload are never concurrent).
	renewBefore time.Duration
	logLevel    string
	checks      int
}

func (p *part) Part() reload.Part {
	return reload.Part{Name: p.name, Check: func(_ context.Context, running, next *config.Config) (func(), error) {
		p.checks++
		if p.refuse != nil {
			if err := p.refuse(running, next); err != nil {
				return nil, err
			}
		}
		return func() { p.renewBefore, p.logLevel = next.RenewBefore.D(), next.LogLevel }, nil
	}}
}

// world is a coordinator over three fake parts, with the daemon's metrics and an observed log.
type world struct {
	c     *reload.Coordinator
	parts []*part
	path  string
	clock *fakeclock.Fake
	reg   *prometheus.Registry
	logs  *observer.ObservedLogs
}

func newWorld(t *testing.T, refuse map[string]func(running, next *config.Config) error) *world {
	t.Helper()
	w := &world{path: filepath.Join(t.TempDir(), "config.yaml"), clock: fakeclock.New(time.Unix(1.7e9, 0)), reg: prometheus.NewRegistry()}
	core, logs := observer.New(zapcore.DebugLevel)
	w.logs = logs
	m := metrics.New(w.reg, snapshot{}, func() bool { return true }, "test", "test")
	var parts []reload.Part
	for _, name := range []string{"first", "second", "third"} {
		p := &part{name: name, refuse: refuse[name]}
		w.parts = append(w.parts, p)
		parts = append(parts, p.Part())
	}
	w.c = reload.New(reload.Options{Path: w.path, Clock: w.clock, Log: zap.New(core), Metrics: m, Parts: parts})
	return w
}

type snapshot struct{}

func (snapshot) Snapshot() []rotator.Status { return nil }

func (w *world) write(t *testing.T, raw string) {
	t.Helper()
	if err := os.WriteFile(w.path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start loads the file and applies it as the daemon's start-up does.
func (w *world) start(t *testing.T, raw string) error {
	t.Helper()
	w.write(t, raw)
	cfg, err := reload.Load(w.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return w.c.Apply(context.Background(), cfg)
}

// value reads one series from the registry; ok is false when it does not exist.
func (w *world) value(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// refuseDebug refuses a configuration that sets logLevel to debug, naming the field.
func refuseDebug(_, next *config.Config) error {
	if next.LogLevel == "debug" {
		return &reload.Refusal{Problems: []string{"logLevel: changes only on restart"}}
	}
	return nil
}

func TestReloadAppliesToEveryPartOrToNone(t *testing.T) {
	t.Parallel()
	changed := strings.Replace(strings.Replace(base, "renewBefore: 30d", "renewBefore: 20d", 1), "logLevel: info", "logLevel: debug", 1)
	tests := []struct {
		name   string
		refuse map[string]func(running, next *config.Config) error
		file   string
		// want is what every part runs after the reload: the new file's values or the old ones.
		wantRenew   time.Duration
		wantLevel   string
		wantOK      float64
		wantRefusal string // the part counted and logged; "" for none
		wantProblem string
	}{
		{"a valid change reaches every part", nil, changed, 20 * 24 * time.Hour, "debug", 1, "", ""},
		{"the first part refuses: no part applies it", map[string]func(running, next *config.Config) error{"first": refuseDebug},
			changed, 30 * 24 * time.Hour, "info", 0, "first", "logLevel: changes only on restart"},
		{"the last part refuses: no part applies it", map[string]func(running, next *config.Config) error{"third": refuseDebug},
			changed, 30 * 24 * time.Hour, "info", 0, "third", "logLevel: changes only on restart"},
		{"a file that does not parse: no part sees it", nil, "applications: [unclosed\n",
			30 * 24 * time.Hour, "info", 0, "config", "YAML syntax error"},
		{"an invalid file: no part sees it", nil, strings.Replace(base, "renewBefore: 30d", "renewBefore: soon", 1),
			30 * 24 * time.Hour, "info", 0, "config", "renewBefore (line 4): not a duration"},
		{"a missing file: no part sees it", nil, "", 30 * 24 * time.Hour, "info", 0, "config", "reading config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, tc.refuse)
			if err := w.start(t, base); err != nil {
				t.Fatalf("start-up: %v", err)
			}
			startHash, _ := w.value(t, "lwa_rotator_config_hash", nil)
			checks := w.parts[0].checks
			w.clock.Advance(time.Hour)
			if tc.file == "" {
				if err := os.Remove(w.path); err != nil {
					t.Fatal(err)
				}
			} else {
				w.write(t, tc.file)
			}

			err := w.c.Reload(context.Background())

			if (err == nil) != (tc.wantRefusal == "") {
				t.Fatalf("Reload = %v, want refusal by %q", err, tc.wantRefusal)
			}
			for _, p := range w.parts {
				if p.renewBefore != tc.wantRenew || p.logLevel != tc.wantLevel {
					t.Errorf("part %s runs renewBefore %s, logLevel %s; want %s, %s", p.name, p.renewBefore, p.logLevel, tc.wantRenew, tc.wantLevel)
				}
			}
			if got := w.c.Running().RenewBefore.D(); got != tc.wantRenew {
				t.Errorf("the coordinator's running renewBefore = %s, want %s", got, tc.wantRenew)
			}
			if ok, _ := w.value(t, "lwa_rotator_config_last_reload_successful", nil); ok != tc.wantOK {
				t.Errorf("config_last_reload_successful = %v, want %v", ok, tc.wantOK)
			}
			hash, _ := w.value(t, "lwa_rotator_config_hash", nil)
			at, _ := w.value(t, "lwa_rotator_config_last_reload_success_timestamp_seconds", nil)
			if tc.wantRefusal == "" {
				if hash == startHash || at != 1.7e9+3600 {
					t.Errorf("after an applied reload: hash moved %v, success timestamp %v; want moved, %v", hash != startHash, at, 1.7e9+3600)
				}
				if w.logs.FilterMessage("SIGHUP: configuration reloaded").Len() != 1 {
					t.Error("no reloaded line")
				}
				return
			}
			if hash != startHash || at != 1.7e9 {
				t.Errorf("after a refusal: hash moved %v, success timestamp %v; want unmoved, %v", hash != startHash, at, 1.7e9)
			}
			if n, _ := w.value(t, "lwa_rotator_config_reload_refusals_total", map[string]string{"part": tc.wantRefusal}); n != 1 {
				t.Errorf("refusals_total{part=%q} = %v, want 1", tc.wantRefusal, n)
			}
			lines := w.logs.FilterMessage("SIGHUP: configuration reload failed; keeping the running configuration").FilterField(zap.String("part", tc.wantRefusal)).All()
			found := false
			for _, l := range lines {
				found = found || strings.Contains(l.ContextMap()["problem"].(string), tc.wantProblem)
			}
			if !found {
				t.Errorf("no refusal line with part %s and a problem naming %q: %v", tc.wantRefusal, tc.wantProblem, w.logs.All())
			}
			if tc.wantRefusal == "config" && w.parts[0].checks != checks {
				t.Errorf("a part checked a configuration that did not load")
			}
		})
	}
}

// Every part is asked before any applies, so two refusals are both reported, each under its part.
func TestEveryRefusingPartIsNamed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]func(running, next *config.Config) error{
		"first": refuseDebug,
		"third": func(_, next *config.Config) error {
			if next.RenewBefore.D() != 30*24*time.Hour {
				return &reload.Refusal{Problems: []string{"renewBefore: too short", "renewBefore: changes only on restart"}}
			}
			return nil
		},
	})
	if err := w.start(t, base); err != nil {
		t.Fatal(err)
	}
	w.write(t, strings.Replace(strings.Replace(base, "renewBefore: 30d", "renewBefore: 20d", 1), "logLevel: info", "logLevel: debug", 1))
	err := w.c.Reload(context.Background())
	const want = "configuration refused by first, third (3 problems):\n" +
		"  - first: logLevel: changes only on restart\n" +
		"  - third: renewBefore: too short\n" +
		"  - third: renewBefore: changes only on restart"
	if err == nil || err.Error() != want {
		t.Fatalf("Reload = %v, want\n%s", err, want)
	}
	var re *reload.RefusedError
	if !errors.As(err, &re) || len(re.Parts) != 2 || re.Parts[0].Part != "first" || re.Parts[1].Part != "third" {
		t.Fatalf("refusal parts: %+v", re)
	}
	for _, name := range []string{"first", "third"} {
		if n, _ := w.value(t, "lwa_rotator_config_reload_refusals_total", map[string]string{"part": name}); n != 1 {
			t.Errorf("refusals_total{part=%q} = %v, want 1", name, n)
		}
	}
	if _, ok := w.value(t, "lwa_rotator_config_reload_refusals_total", map[string]string{"part": "second"}); ok {
		t.Error("a part that accepted is counted as refusing")
	}
	if n := w.logs.FilterMessage("SIGHUP: configuration reload failed; keeping the running configuration").Len(); n != 3 {
		t.Errorf("%d refusal lines, want one per problem (3)", n)
	}
}

// Start-up is the first apply: a part's check sees running nil, and a refusal stops the start-up
// with the part's reason, applying nothing.
func TestStartUpIsTheFirstApply(t *testing.T) {
	t.Parallel()
	errCause := errors.New("a cause callers branch on")
	var sawRunning []bool
	w := newWorld(t, map[string]func(running, next *config.Config) error{
		"first": func(running, _ *config.Config) error {
			sawRunning = append(sawRunning, running != nil)
			return nil
		},
		"second": func(running, _ *config.Config) error {
			if running == nil {
				return &reload.Refusal{Problems: []string{"secret lwa/main-app has no room for the daemon's tags"}, Cause: errCause}
			}
			return nil
		},
	})
	err := w.start(t, base)
	want := "configuration refused by second (1 problems):\n  - second: secret lwa/main-app has no room for the daemon's tags"
	if err == nil || err.Error() != want {
		t.Fatalf("start-up = %v, want\n%s", err, want)
	}
	if !errors.Is(err, errCause) {
		t.Errorf("the part's cause is lost: errors.Is = false")
	}
	if w.c.Running() != nil {
		t.Error("a refused start-up left a running configuration")
	}
	for _, p := range w.parts {
		if p.logLevel != "" {
			t.Errorf("part %s was applied a refused start-up configuration", p.name)
		}
	}
	if ok, _ := w.value(t, "lwa_rotator_config_last_reload_successful", nil); ok != 0 {
		t.Errorf("config_last_reload_successful = %v after a refused start-up, want 0", ok)
	}
	if len(sawRunning) != 1 || sawRunning[0] {
		t.Errorf("the first apply's check saw running = %v, want [false]", sawRunning)
	}
}

func TestStartUpAppliesAndReloadSeesIt(t *testing.T) {
	t.Parallel()
	var sawRunning []string
	w := newWorld(t, map[string]func(running, next *config.Config) error{
		"second": func(running, _ *config.Config) error {
			if running != nil {
				sawRunning = append(sawRunning, running.LogLevel)
			}
			return nil
		},
	})
	if err := w.start(t, base); err != nil {
		t.Fatal(err)
	}
	for _, p := range w.parts {
		if p.logLevel != "info" || p.renewBefore != 30*24*time.Hour {
			t.Errorf("part %s after start-up: %s, %s", p.name, p.logLevel, p.renewBefore)
		}
	}
	if ok, _ := w.value(t, "lwa_rotator_config_last_reload_successful", nil); ok != 1 {
		t.Errorf("config_last_reload_successful = %v after start-up, want 1", ok)
	}
	if at, _ := w.value(t, "lwa_rotator_config_last_reload_success_timestamp_seconds", nil); at != 1.7e9 {
		t.Errorf("success timestamp = %v, want 1.7e9", at)
	}
	w.write(t, strings.Replace(base, "logLevel: info", "logLevel: warn", 1))
	if err := w.c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Join(sawRunning, ",") != "info,warn" {
		t.Errorf("reloads compared with %v, want the configuration running each time [info warn]", sawRunning)
	}
}

// A value pasted into any field never reaches the error, the log or the metrics of a reload.
func TestReloadNeverEchoesAPastedSecret(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	if err := w.start(t, base); err != nil {
		t.Fatal(err)
	}
	paths := configtest.FieldPaths()
	if len(paths) < 20 {
		t.Fatalf("only %d fields: the field walk is broken", len(paths))
	}
	for _, path := range paths {
		raw, err := configtest.Set([]byte(base), path, configtest.Pasted)
		if err != nil {
			t.Fatal(err)
		}
		w.write(t, string(raw))
		err = w.c.Reload(context.Background())
		if err == nil {
			t.Fatalf("a secret in %s was applied", path)
		}
		if configtest.Leaks(err.Error()) {
			t.Errorf("the reload error for %s holds the secret", path)
		}
	}
	for _, e := range w.logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + toString(v)
		}
		if configtest.Leaks(line) {
			t.Errorf("a log line holds the secret: %s", line)
		}
	}
	families, err := w.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if configtest.Leaks(f.String()) {
			t.Errorf("metric %s holds the secret", f.GetName())
		}
	}
	if n, _ := w.value(t, "lwa_rotator_config_reload_refusals_total", map[string]string{"part": "config"}); n != float64(len(paths)) {
		t.Errorf("refusals_total{part=config} = %v, want %d", n, len(paths))
	}
	for _, p := range w.parts {
		if p.logLevel != "info" {
			t.Errorf("part %s applied a configuration holding a secret", p.name)
		}
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// Load holds AWS endpoint variables to the file's transport rule, at start-up and on reload.
func TestLoadRefusesAPlainHTTPAWSEndpoint(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env     map[string]string
		wantErr string
	}{
		{map[string]string{}, ""},
		{map[string]string{"AWS_ENDPOINT_URL_SQS": "https://sqs.example.com"}, ""},
		{map[string]string{"AWS_ENDPOINT_URL_SQS": "http://sqs.example.com"}, "AWS_ENDPOINT_URL_SQS: uses plain http"},
	}
	for _, tc := range tests {
		_, err := reload.Load(path, func(k string) string { return tc.env[k] })
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Load with %v = %v, want %q", tc.env, err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "sqs.example.com") {
			t.Errorf("the error repeats the endpoint: %v", err)
		}
	}
}
