package prometheus_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	prometheusBin = "/usr/bin/prometheus"
	promtoolBin   = "/usr/bin/promtool"
)

// binary is the sandbox command (the daemon with moto and the simulator) built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lwa-rotator-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating the build directory:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "lwa-rotator-sandbox")
	build := exec.Command("go", "build", "-o", binary, "./cmd/lwa-rotator-sandbox")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/lwa-rotator-sandbox: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// A real Prometheus scrapes the sandbox with the repository's rules; a broken configuration
// reloaded with SIGHUP makes LWAConfigReloadFailed fire.
func TestPrometheusScrapesSandboxAndAlertFires(t *testing.T) {
	requireBinary(t, prometheusBin)
	requireBinary(t, promtoolBin)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	sbAddr := freeAddr(t)
	sb := startProc(t, "sandbox", binary, "--listen", sbAddr)
	cfgLine, err := sb.out.wait(ctx, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "config:") })
	if err != nil {
		t.Fatalf("waiting for the sandbox's config line: %v", err)
	}
	configPath := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(cfgLine), "config:"))
	t.Cleanup(func() {
		_ = sb.stop(10 * time.Second)
		removeSandboxDir(t, configPath)
	})
	if _, err := sb.out.wait(ctx, func(l string) bool { return strings.HasPrefix(l, "Rotation complete") }); err != nil {
		t.Fatalf("waiting for the sandbox's rotation: %v", err)
	}

	checkScrape(ctx, t, "http://"+sbAddr+"/metrics")

	api := startPrometheus(ctx, t, sbAddr)
	eventually(ctx, t, "target lwa-rotator up", func(ctx context.Context) (bool, string) {
		ts, err := api.targets(ctx)
		if err != nil || len(ts) != 1 {
			return false, fmt.Sprintf("targets %+v, err %v", ts, err)
		}
		return ts[0].Labels["job"] == "lwa-rotator" && ts[0].Labels["instance"] == sbAddr && ts[0].Health == "up",
			fmt.Sprintf("target %+v", ts[0])
	})
	eventually(ctx, t, "lwa_rotator_ready == 1", valueIs(api, "lwa_rotator_ready", 1))
	dataSeen := time.Now()

	rules := loadRules(t)
	eventually(ctx, t, "every rule evaluated on scraped data", func(ctx context.Context) (bool, string) {
		groups, err := api.rules(ctx)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, g := range groups {
			if !g.LastEvaluation.After(dataSeen) {
				return false, fmt.Sprintf("group %s last evaluated %s", g.Name, g.LastEvaluation)
			}
			for _, r := range g.Rules {
				if r.Health != "ok" {
					return false, fmt.Sprintf("rule %s health %q: %s", r.Name, r.Health, r.LastError)
				}
				n++
			}
		}
		return n == len(rules), fmt.Sprintf("%d rules loaded, the file has %d", n, len(rules))
	})
	checkDashboardQueries(ctx, t, api)

	// A healthy sandbox must not alert at all, LWAConfigReloadFailed included.
	if as, err := api.alerts(ctx); err != nil || len(as) != 0 {
		t.Fatalf("alerts on a healthy sandbox: %+v (err %v), want none", as, err)
	}
	if err := valueIsNow(ctx, api, "lwa_rotator_config_last_reload_successful", 1); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(configPath, []byte("applications: [unclosed\n"), 0o600); err != nil {
		t.Fatalf("breaking the sandbox config: %v", err)
	}
	if err := sb.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("sending SIGHUP to the sandbox: %v", err)
	}
	eventually(ctx, t, "lwa_rotator_config_last_reload_successful == 0", valueIs(api, "lwa_rotator_config_last_reload_successful", 0))
	eventually(ctx, t, "the refusal counted as the file's", valueIs(api, `lwa_rotator_config_reload_refusals_total{part="config"}`, 1))
	var fired alert
	eventually(ctx, t, "LWAConfigReloadFailed firing", func(ctx context.Context) (bool, string) {
		as, err := api.alerts(ctx)
		for _, a := range as {
			if a.Labels["alertname"] == "LWAConfigReloadFailed" {
				fired = a
				return a.State == "firing", "state " + a.State
			}
		}
		return false, fmt.Sprintf("alerts %+v, err %v", as, err)
	})
	for k, want := range map[string]string{"severity": "warning", "job": "lwa-rotator", "instance": sbAddr} {
		if fired.Labels[k] != want {
			t.Errorf("LWAConfigReloadFailed label %s = %q, want %q", k, fired.Labels[k], want)
		}
	}
	if want := "https://github.com/spapi-tools/lwa-rotator/blob/main/docs/runbooks/LWAConfigReloadFailed.md"; fired.Annotations["runbook_url"] != want {
		t.Errorf("runbook_url %q, want %q", fired.Annotations["runbook_url"], want)
	}
	if !strings.Contains(fired.Annotations["description"], sbAddr) {
		t.Errorf("description %q does not name the instance %s", fired.Annotations["description"], sbAddr)
	}

	if err := sb.stop(15 * time.Second); err != nil {
		t.Errorf("sandbox after SIGTERM: %v, want exit status 0", err)
	}
}

// startPrometheus runs the Debian prometheus binary against the sandbox with the repository's rules.
func startPrometheus(ctx context.Context, t *testing.T, target string) promAPI {
	t.Helper()
	rules, err := filepath.Abs(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: lwa-rotator
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("writing the Prometheus config: %v", err)
	}
	addr := freeAddr(t)
	p := startProc(t, "prometheus", prometheusBin, "--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	api := promAPI{base: "http://" + addr}
	eventually(ctx, t, "Prometheus ready", func(ctx context.Context) (bool, string) {
		select {
		case <-p.done:
			return false, fmt.Sprintf("prometheus exited: %v", p.err)
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.base+"/-/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return api
}

// checkScrape pipes a real scrape into `promtool check metrics` and checks it carries every
// exported metric.
func checkScrape(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: HTTP %d, %v", url, resp.StatusCode, err)
	}
	lint := exec.CommandContext(ctx, promtoolBin, "check", "metrics")
	lint.Stdin = bytes.NewReader(body)
	out, err := lint.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	} else if len(bytes.TrimSpace(out)) > 0 {
		t.Logf("promtool check metrics (exit 0) said:\n%s", out)
	}
	for name, histogram := range exported {
		if onlyWithWebhook[name] || onlyWhileSet[name] {
			continue
		}
		series := name
		if histogram {
			series += "_bucket"
		}
		if !bytes.Contains(body, []byte("\n"+series+"{")) && !bytes.Contains(body, []byte("\n"+series+" ")) {
			t.Errorf("the sandbox's scrape has no %s series", series)
		}
	}
}

// checkDashboardQueries runs every dashboard query, its Grafana variables filled in, on the real
// Prometheus, and checks the expiry countdown shows the sandbox's fresh secret.
func checkDashboardQueries(ctx context.Context, t *testing.T, api promAPI) {
	t.Helper()
	fill := strings.NewReplacer("$application", ".+", "$__rate_interval", "1m")
	for _, q := range loadDashboard(t).queries() {
		expr := fill.Replace(q.Expr)
		if strings.HasPrefix(expr, "label_values(") {
			expr = "group by (application) (" + strings.TrimSuffix(strings.TrimPrefix(expr, "label_values("), ", application)") + ")"
		}
		res, err := api.query(ctx, expr)
		if err != nil {
			t.Errorf("dashboard %s: %v", q.Where, err)
			continue
		}
		if strings.HasPrefix(q.Where, "panel Current secret expires in ") || strings.HasPrefix(q.Where, "variable ") {
			// The sandbox has a production application and a canary.
			apps := map[string]bool{}
			for _, r := range res {
				apps[r.Metric["application"]] = true
			}
			if len(res) != 2 || !apps["demo-app"] || !apps["demo-canary"] {
				t.Errorf("dashboard %s: got %+v, want one demo-app and one demo-canary series", q.Where, res)
				continue
			}
		}
		if strings.HasPrefix(q.Where, "panel Current secret expires in ") {
			for _, r := range res {
				if v, err := r.float(); err != nil || v <= 0 || v > 181*86400 {
					t.Errorf("dashboard %s: expiry countdown %v (%v), want within 180 days", q.Where, v, err)
				}
			}
		}
	}
}

func valueIs(api promAPI, expr string, want float64) func(context.Context) (bool, string) {
	return func(ctx context.Context) (bool, string) {
		if err := valueIsNow(ctx, api, expr, want); err != nil {
			return false, err.Error()
		}
		return true, ""
	}
}

// valueIsNow checks that expr is one series whose value is want.
func valueIsNow(ctx context.Context, api promAPI, expr string, want float64) error {
	res, err := api.query(ctx, expr)
	if err != nil {
		return err
	}
	if len(res) != 1 {
		return fmt.Errorf("%s: %d series, want 1: %+v", expr, len(res), res)
	}
	got, err := res[0].float()
	if err != nil || got != want {
		return fmt.Errorf("%s = %v (%v), want %v", expr, got, err, want)
	}
	return nil
}

// removeSandboxDir deletes the sandbox's generated directory, which it leaves behind.
func removeSandboxDir(t *testing.T, configPath string) {
	dir := filepath.Dir(configPath)
	if strings.HasPrefix(filepath.Base(dir), "lwa-rotator-sandbox-") {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing %s: %v", dir, err)
		}
	}
}
