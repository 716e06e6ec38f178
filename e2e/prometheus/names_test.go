package prometheus_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spapi-tools/lwa-rotator/internal/webhook"
	"github.com/spapi-tools/lwa-rotator/metrics"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
)

// exported is the metric contract the rules and the dashboard are written against; the
// histogram's series carry _bucket, _sum and _count suffixes.
var exported = map[string]bool{
	"lwa_rotator_secret_expiry_timestamp_seconds":              false,
	"lwa_rotator_previous_secret_expiry_timestamp_seconds":     false,
	"lwa_rotator_next_rotation_timestamp_seconds":              false,
	"lwa_rotator_rotation_window_opens_timestamp_seconds":      false,
	"lwa_rotator_rotation_claim_held":                          false,
	"lwa_rotator_rotations_outside_window_total":               false,
	"lwa_rotator_last_success_timestamp_seconds":               false,
	"lwa_rotator_rotation_in_flight_since_timestamp_seconds":   false,
	"lwa_rotator_application_ready":                            false,
	"lwa_rotator_ready":                                        false,
	"lwa_rotator_config_last_reload_successful":                false,
	"lwa_rotator_config_last_reload_success_timestamp_seconds": false,
	"lwa_rotator_config_hash":                                  false,
	"lwa_rotator_config_reload_refusals_total":                 false,
	"lwa_rotator_build_info":                                   false,
	"lwa_rotator_rotations_total":                              false,
	"lwa_rotator_notifications_total":                          false,
	"lwa_rotator_notifications_unknown_version_total":          false,
	"lwa_rotator_current_secret_valid":                         false,
	"lwa_rotator_pending_secret_since_timestamp_seconds":       false,
	"lwa_rotator_last_probe_timestamp_seconds":                 false,
	"lwa_rotator_current_changed_externally_total":             false,
	"lwa_rotator_canary_last_success_timestamp_seconds":        false,
	"lwa_rotator_canary_interval_seconds":                      false,
	"lwa_rotator_notifications_sns_envelope_total":             false,
	"lwa_rotator_api_requests_total":                           false,
	"lwa_rotator_sqs_polls_total":                              false,
	"lwa_rotator_dead_letter_messages":                         false,
	"lwa_rotator_background_read_failures_total":               false,
	"lwa_rotator_background_last_success_timestamp_seconds":    false,
	"lwa_rotator_background_interval_seconds":                  false,
	"lwa_rotator_webhook_deliveries_total":                     false,
	"lwa_rotator_webhook_acknowledged":                         false,
	"lwa_rotator_api_request_duration_seconds":                 true, // histogram
}

// onlyWithWebhook are series that exist only for applications with a webhook configured; the
// sandbox has none, so its scrape lacks them.
var onlyWithWebhook = map[string]bool{
	"lwa_rotator_webhook_deliveries_total": true,
	"lwa_rotator_webhook_acknowledged":     true,
}

// onlyWhileSet are the series exported only while they are set: timestamps (no rotation in
// flight, no secret waiting to be promoted) and per-application counters before their first
// count (AWSCURRENT never changed by hand) and the refusals before the first refused
// configuration: none in a settled sandbox.
var onlyWhileSet = map[string]bool{
	"lwa_rotator_rotation_in_flight_since_timestamp_seconds": true,
	"lwa_rotator_pending_secret_since_timestamp_seconds":     true,
	"lwa_rotator_current_changed_externally_total":           true,
	"lwa_rotator_config_reload_refusals_total":               true,
	"lwa_rotator_rotation_window_opens_timestamp_seconds":    true,
	"lwa_rotator_rotations_outside_window_total":             true,
	"lwa_rotator_rotation_claim_held":                        true,
}

var metricToken = regexp.MustCompile(`lwa_rotator_[a-z_]+`)

// unknownMetrics returns the lwa_rotator_* names in expr that the daemon does not export.
func unknownMetrics(expr string) []string {
	var bad []string
	for _, name := range metricToken.FindAllString(expr, -1) {
		if _, ok := exported[name]; ok {
			continue
		}
		base := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			base = strings.TrimSuffix(base, suf)
		}
		if exported[base] {
			continue
		}
		bad = append(bad, name)
	}
	return bad
}

type snapshot []rotator.Status

func (s snapshot) Snapshot() []rotator.Status { return s }

// The contract above must be exactly what the metrics package registers, or the name check below
// proves nothing.
func TestExportedListMatchesMetricsPackage(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	set := time.Unix(1e9, 0)
	m := metrics.New(reg, snapshot{{App: "a", CurrentExpiry: set, PreviousExpiry: set, LastSuccess: set, InFlightSince: set, LastProbe: set,
		PendingSince: set, CurrentValid: rotator.Valid, Canary: true, CanaryInterval: time.Hour, ExternalChanges: 1,
		WindowOpensAt: set, WindowOverrides: 1, ClaimHeldUntil: set.Add(time.Minute)}},
		func() bool { return true }, "test", "", metrics.WithClock(fakeclock.New(set)))
	m.Init(map[string]string{"https://sqs/q": "expiry"})
	m.Rotation("a", rotator.ResultSuccess) // per-application counters appear with their first count
	m.ObserveRequest("lwa", "token", 200, time.Millisecond)
	m.DeadLetters("expiry", 0)
	m.ConfigRefused("config") // the refusals appear with the first
	m.BackgroundUnit(metrics.UnitDeadLetterWatch, time.Minute, set)
	m.BackgroundUnit(metrics.UnitRequestWatch, time.Minute, set)
	// The webhook's series live in their own package, registered on the daemon's registry.
	webhook.New(webhook.Options{Clock: fakeclock.New(time.Unix(1e9, 0)), Registerer: reg}).
		Configure([]webhook.Target{{App: "a", URL: "https://hooks.example.com/", Key: webhook.KeySource{File: "/k"}}})
	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gathering: %v", err)
	}
	var got, want []string
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "lwa_rotator_") {
			got = append(got, f.GetName())
		}
	}
	for name := range exported {
		want = append(want, name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("metrics package exports %v\nthe contract lists %v", got, want)
	}
}

func TestQueriesUseOnlyExportedMetrics(t *testing.T) {
	t.Parallel()
	var ruleQueries, dashQueries []dashboardQuery
	for _, r := range loadRules(t) {
		ruleQueries = append(ruleQueries, dashboardQuery{Where: "alert " + r.Alert, Expr: r.Expr})
	}
	dashQueries = loadDashboard(t).queries()
	for _, tc := range []struct {
		name    string
		queries []dashboardQuery
	}{
		{"rules", ruleQueries},
		{"dashboard", dashQueries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			used := 0
			for _, q := range tc.queries {
				if strings.TrimSpace(q.Expr) == "" {
					t.Errorf("%s: empty expression", q.Where)
				}
				used += len(metricToken.FindAllString(q.Expr, -1))
				if bad := unknownMetrics(q.Expr); len(bad) > 0 {
					t.Errorf("%s uses metrics the daemon does not export: %v\n%s", q.Where, bad, q.Expr)
				}
			}
			if used == 0 {
				t.Errorf("no lwa_rotator_ metric found in %d %s queries", len(tc.queries), tc.name)
			}
		})
	}
}

func TestUnknownMetricsCatchesTypos(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr string
		bad  []string
	}{
		{`lwa_rotator_ready == 0`, nil},
		{`histogram_quantile(0.9, rate(lwa_rotator_api_request_duration_seconds_bucket[5m]))`, nil},
		{`lwa_rotator_secret_expiry_seconds - time()`, []string{"lwa_rotator_secret_expiry_seconds"}},
		{`rate(lwa_rotator_rotations_total_bucket[5m])`, []string{"lwa_rotator_rotations_total_bucket"}},
	} {
		if got := unknownMetrics(tc.expr); !slices.Equal(got, tc.bad) {
			t.Errorf("unknownMetrics(%q) = %v, want %v", tc.expr, got, tc.bad)
		}
	}
}

// Every alert must be actionable (severity, texts, runbook) and tested both ways by promtool.
func TestEveryAlertHasRunbookAndTwoSidedTests(t *testing.T) {
	t.Parallel()
	index, err := os.ReadFile(filepath.Join(runbookDir, "README.md"))
	if err != nil {
		t.Fatalf("reading the runbook index: %v", err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range loadRuleTests(t) {
		if len(tc.ExpAlerts) > 0 {
			fires[tc.Alertname] = true
		} else {
			quiet[tc.Alertname] = true
		}
	}
	for _, r := range loadRules(t) {
		t.Run(r.Alert, func(t *testing.T) {
			if r.Alert == "" {
				t.Fatalf("a rule without alert name (recording rules are not expected here): %q", r.Expr)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("severity %q, want critical or warning", s)
			}
			for _, a := range []string{"summary", "description"} {
				if r.Annotations[a] == "" {
					t.Errorf("annotation %s missing", a)
				}
			}
			want := "https://github.com/spapi-tools/lwa-rotator/blob/main/docs/runbooks/" + r.Alert + ".md"
			if got := r.Annotations["runbook_url"]; got != want {
				t.Errorf("runbook_url %q, want %q", got, want)
			}
			if _, err := os.Stat(filepath.Join(runbookDir, r.Alert+".md")); err != nil {
				t.Errorf("runbook missing: %v", err)
			}
			if !strings.Contains(string(index), "("+r.Alert+".md)") {
				t.Errorf("docs/runbooks/README.md does not link %s.md", r.Alert)
			}
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("%s: promtool tests where it fires: %v, where it stays quiet: %v; want both", rulesTestPath, fires[r.Alert], quiet[r.Alert])
			}
		})
	}
}
