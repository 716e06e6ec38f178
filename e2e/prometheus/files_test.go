package prometheus_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// repoRoot is the module root as seen from this package's directory (where go test runs).
const repoRoot = "../.."

var (
	rulesPath     = filepath.Join(repoRoot, "deploy", "prometheus", "lwa-rotator.rules.yml")
	rulesTestPath = filepath.Join(repoRoot, "deploy", "prometheus", "lwa-rotator.rules.test.yml")
	dashboardPath = filepath.Join(repoRoot, "deploy", "grafana", "lwa-rotator.json")
	runbookDir    = filepath.Join(repoRoot, "docs", "runbooks")
)

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, rulesPath, &f)
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules", rulesPath)
	}
	return rules
}

// alertRuleTest is one alert_rule_test entry of a promtool test file.
type alertRuleTest struct {
	EvalTime  string           `yaml:"eval_time"`
	Alertname string           `yaml:"alertname"`
	ExpAlerts []map[string]any `yaml:"exp_alerts"`
}

func loadRuleTests(t *testing.T) []alertRuleTest {
	t.Helper()
	var f struct {
		Tests []struct {
			AlertRuleTest []alertRuleTest `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, rulesTestPath, &f)
	var out []alertRuleTest
	for _, tc := range f.Tests {
		out = append(out, tc.AlertRuleTest...)
	}
	return out
}

func readYAML(t *testing.T, path string, out any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
}

// dashboardQuery is one PromQL expression of the dashboard, with where it came from.
type dashboardQuery struct {
	Where string
	Expr  string
}

type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Inputs []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"__inputs"`
	SchemaVersion int `json:"schemaVersion"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // collapsed rows nest their panels
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatalf("reading %s: %v", dashboardPath, err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("parsing %s: %v", dashboardPath, err)
	}
	return d
}

// queries lists every panel target and every query variable of the dashboard.
func (d dashboard) queries() []dashboardQuery {
	var out []dashboardQuery
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, dashboardQuery{Where: "panel " + p.Title + " target " + tg.RefID, Expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			out = append(out, dashboardQuery{Where: "variable " + v.Name, Expr: v.Definition})
		}
	}
	return out
}
