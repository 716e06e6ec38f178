package helm_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "lwa-rotator"
	releaseName = "lwa-rotator"
	namespace   = "lwa-rotator"
	// helmVersion is the version scripts/test-all.sh installs.
	helmVersion = "v3.22.0"
)

var (
	fullValues     = filepath.Join(chartDir, "ci", "full-values.yaml")
	eksValues      = filepath.Join(chartDir, "ci", "eks-values.yaml")
	repoRulesPath  = filepath.Join("..", "prometheus", "lwa-rotator.rules.yml")
	chartRulesPath = filepath.Join(chartDir, "files", "lwa-rotator.rules.yml")
)

// valueSet is one way of installing the chart that CI lints and renders.
type valueSet struct {
	name string
	args []string // extra helm arguments (-f FILE)
	// monitoring: the ServiceMonitor, PrometheusRule and NetworkPolicy are rendered.
	monitoring bool
	// validConfig: the daemon accepts the rendered configuration as it stands.
	validConfig bool
	// replicas: the replicaCount the set asks for; above 1 a PodDisruptionBudget is rendered.
	replicas int32
}

// valueSets: the defaults, every option on, and the EKS example the README starts from.
var valueSets = []valueSet{
	{name: "default values", replicas: 1},
	{name: "ci/full-values.yaml", args: []string{"-f", fullValues}, monitoring: true, validConfig: true, replicas: 3},
	{name: "ci/eks-values.yaml", args: []string{"-f", eksValues}, monitoring: true, validConfig: true, replicas: 1},
}

// helmBinary finds the helm that scripts/test-all.sh installs. Without it the chart is unchecked,
// which CI must not mistake for a pass.
func helmBinary(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("helm")
	if err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("helm not on PATH (CI=true): install it with `go install helm.sh/helm/v3/cmd/helm@%s` (scripts/test-all.sh does)", helmVersion)
		}
		t.Skipf("helm not on PATH; `go install helm.sh/helm/v3/cmd/helm@%s` (scripts/test-all.sh does), CI fails here", helmVersion)
	}
	return path
}

// runHelm runs helm with a private home, so the user's repositories and plugins play no part.
func runHelm(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	return runHelmIn(t, "", args...)
}

// runHelmIn is runHelm in directory dir ("" for this package's).
func runHelmIn(t *testing.T, dir string, args ...string) (stdout string, err error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), nil
}

// renderText runs `helm template` and returns its YAML stream.
func renderText(t *testing.T, extra ...string) string {
	t.Helper()
	args := append([]string{"template", releaseName, chartDir, "--namespace", namespace}, extra...)
	out, err := runHelm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments returns the YAML documents of a stream that hold anything but comments.
func splitDocuments(stream string) []string {
	var docs []string
	for _, d := range docSeparator.Split(stream, -1) {
		for _, line := range strings.Split(d, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				docs = append(docs, d)
				break
			}
		}
	}
	return docs
}

// decodeStrict decodes one YAML document the way the API server's strict field validation does:
// case-sensitive field names, unknown and duplicate fields are errors.
func decodeStrict(doc []byte, into any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("YAML to JSON: %w", err)
	}
	strict, err := kjson.UnmarshalStrict(j, into, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields)
	if err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("strict decoding: %w", errors.Join(strict...))
	}
	return nil
}

// objects are the rendered objects, decoded into their API types.
type objects struct {
	deployments     []*appsv1.Deployment
	disruptions     []*policyv1.PodDisruptionBudget
	serviceAccounts []*corev1.ServiceAccount
	configMaps      []*corev1.ConfigMap
	services        []*corev1.Service
	networkPolicies []*networkingv1.NetworkPolicy
	serviceMonitors []*monitoringv1.ServiceMonitor
	prometheusRules []*monitoringv1.PrometheusRule
	externalSecrets []*externalSecret
}

// add decodes doc into the type its apiVersion and kind name; a kind the chart is not expected to
// render is an error too.
func (o *objects) add(doc string) error {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
		return fmt.Errorf("reading apiVersion and kind: %w", err)
	}
	var into any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		v := &appsv1.Deployment{}
		o.deployments, into = append(o.deployments, v), v
	case "policy/v1 PodDisruptionBudget":
		v := &policyv1.PodDisruptionBudget{}
		o.disruptions, into = append(o.disruptions, v), v
	case "v1 ServiceAccount":
		v := &corev1.ServiceAccount{}
		o.serviceAccounts, into = append(o.serviceAccounts, v), v
	case "v1 ConfigMap":
		v := &corev1.ConfigMap{}
		o.configMaps, into = append(o.configMaps, v), v
	case "v1 Service":
		v := &corev1.Service{}
		o.services, into = append(o.services, v), v
	case "networking.k8s.io/v1 NetworkPolicy":
		v := &networkingv1.NetworkPolicy{}
		o.networkPolicies, into = append(o.networkPolicies, v), v
	case "monitoring.coreos.com/v1 ServiceMonitor":
		v := &monitoringv1.ServiceMonitor{}
		o.serviceMonitors, into = append(o.serviceMonitors, v), v
	case "monitoring.coreos.com/v1 PrometheusRule":
		v := &monitoringv1.PrometheusRule{}
		o.prometheusRules, into = append(o.prometheusRules, v), v
	case "external-secrets.io/v1 ExternalSecret", "external-secrets.io/v1beta1 ExternalSecret":
		v := &externalSecret{}
		o.externalSecrets, into = append(o.externalSecrets, v), v
	default:
		return fmt.Errorf("unexpected object %s %s", tm.APIVersion, tm.Kind)
	}
	if err := decodeStrict([]byte(doc), into); err != nil {
		return fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	return nil
}

// rendered memoizes helm template per argument list: most tests read the same two value sets.
var rendered struct {
	sync.Mutex
	text map[string]string
}

func renderCached(t *testing.T, extra ...string) string {
	t.Helper()
	key := strings.Join(extra, "\x00")
	rendered.Lock()
	text, ok := rendered.text[key]
	rendered.Unlock()
	if ok {
		return text
	}
	text = renderText(t, extra...)
	rendered.Lock()
	if rendered.text == nil {
		rendered.text = map[string]string{}
	}
	rendered.text[key] = text
	rendered.Unlock()
	return text
}

// render renders the chart and decodes every object strictly, failing the test on any error.
func render(t *testing.T, extra ...string) *objects {
	t.Helper()
	docs := splitDocuments(renderCached(t, extra...))
	if len(docs) == 0 {
		t.Fatal("helm template rendered no objects")
	}
	o := &objects{}
	for _, d := range docs {
		if err := o.add(d); err != nil {
			t.Fatalf("%v\n--- document:\n%s", err, d)
		}
	}
	return o
}
