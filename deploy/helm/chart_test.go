package helm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/spapi-tools/lwa-rotator/config"
)

func TestLint(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			out, err := runHelm(t, append([]string{"lint", "--strict", chartDir}, vs.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "0 chart(s) failed") {
				t.Fatalf("helm lint did not report success:\n%s", out)
			}
		})
	}
}

func TestHelmVersion(t *testing.T) {
	t.Parallel()
	out, err := runHelm(t, "version", "--template", "{{.Version}}")
	if err != nil {
		t.Fatal(err)
	}
	// `go install` builds report only major.minor ("v3.22"); release builds the full version.
	if v := strings.TrimSpace(out); len(v) < len("v3.22") || !strings.HasPrefix(helmVersion, v) {
		t.Errorf("helm version %q, want %s (scripts/test-all.sh installs it)", v, helmVersion)
	}
}

// TestRenderDecodesStrictly renders both value sets and decodes every object into its API type;
// render fails the test on an unknown field, a duplicate field or an unexpected kind.
func TestRenderDecodesStrictly(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			o := render(t, vs.args...)
			optional := 0
			if vs.monitoring {
				optional = 1
			}
			// A budget only for several replicas (TestReplicas has the rest).
			budgets := 0
			if vs.replicas > 1 {
				budgets = 1
			}
			if len(o.disruptions) != budgets {
				t.Errorf("PodDisruptionBudget: rendered %d with %d replicas, want %d", len(o.disruptions), vs.replicas, budgets)
			}
			counts := map[string][2]int{
				"Deployment":     {len(o.deployments), 1},
				"ServiceAccount": {len(o.serviceAccounts), 1},
				"ConfigMap":      {len(o.configMaps), 1},
				"Service":        {len(o.services), 1},
				"ServiceMonitor": {len(o.serviceMonitors), optional},
				"PrometheusRule": {len(o.prometheusRules), optional},
				"NetworkPolicy":  {len(o.networkPolicies), optional},
			}
			for kind, c := range counts {
				if c[0] != c[1] {
					t.Errorf("%s: rendered %d, want %d", kind, c[0], c[1])
				}
			}
		})
	}
}

// TestMisspeltFieldFailsDecode proves the strict decode catches what a typo in a template would
// produce: rendered objects with one field misspelt must fail, the unchanged ones must pass.
func TestMisspeltFieldFailsDecode(t *testing.T) {
	t.Parallel()
	docs := splitDocuments(renderCached(t, valueSets[1].args...))
	find := func(kind string) string {
		for _, d := range docs {
			if strings.Contains(d, "\nkind: "+kind+"\n") {
				return d
			}
		}
		t.Fatalf("no %s rendered", kind)
		return ""
	}
	tests := []struct {
		name, kind, from, to string
		wantInErr            string
	}{
		{"wrong case", "Deployment", "readOnlyRootFilesystem:", "readOnlyRootFileSystem:", "readOnlyRootFileSystem"},
		{"misspelt probe field", "Deployment", "failureThreshold:", "failureTreshold:", "failureTreshold"},
		{"duplicate field", "Deployment", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: false\n            allowPrivilegeEscalation: true", "allowPrivilegeEscalation"},
		{"misspelt service field", "Service", "publishNotReadyAddresses:", "publishNotReadyAdresses:", "publishNotReadyAdresses"},
		{"misspelt rule field", "PrometheusRule", "for: 15m", "fro: 15m", "fro"},
		{"misspelt monitor field", "ServiceMonitor", "scrapeTimeout:", "scrapeTimout:", "scrapeTimout"},
		{"misspelt policy field", "NetworkPolicy", "policyTypes:", "policyType:", "policyType"},
		{"misspelt service account field", "ServiceAccount", "automountServiceAccountToken:", "automountServiceAcountToken:", "automountServiceAcountToken"},
		{"misspelt budget field", "PodDisruptionBudget", "maxUnavailable:", "maxUnavaliable:", "maxUnavaliable"},
		{"misspelt spread field", "Deployment", "whenUnsatisfiable:", "whenUnsatisfiabel:", "whenUnsatisfiabel"},
		{"misspelt downward API field", "Deployment", "fieldPath: metadata.name", "fieldpath: metadata.name", "fieldpath"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := find(tc.kind)
			if err := (&objects{}).add(doc); err != nil {
				t.Fatalf("the unchanged %s must decode: %v", tc.kind, err)
			}
			bad := strings.Replace(doc, tc.from, tc.to, 1)
			if bad == doc {
				t.Fatalf("%q not found in the rendered %s", tc.from, tc.kind)
			}
			err := (&objects{}).add(bad)
			if err == nil {
				t.Fatalf("%s with %q decoded without error", tc.kind, tc.to)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %q does not name %q", err, tc.wantInErr)
			}
		})
	}
}

func TestDeploymentIsLockedDown(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			o := render(t, vs.args...)
			d := o.deployments[0]
			if d.Spec.Replicas == nil || *d.Spec.Replicas != vs.replicas {
				t.Errorf("replicas %v, want %d", d.Spec.Replicas, vs.replicas)
			}
			// Overlap is safe, so an upgrade keeps the running daemon until its successor is ready.
			if got := mustJSON(t, d.Spec.Strategy); got != `{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":0,"maxSurge":1}}` {
				t.Errorf("strategy %s, want RollingUpdate with maxSurge 1 and maxUnavailable 0", got)
			}
			pod := d.Spec.Template.Spec
			// The daemon drains for up to 30 s and then closes its listener within 5 s.
			if g := pod.TerminationGracePeriodSeconds; g == nil || *g <= 35 {
				t.Errorf("terminationGracePeriodSeconds %v, want more than 35", g)
			}
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("the pod mounts a Kubernetes API token it never uses")
			}
			if pod.HostNetwork || pod.HostPID || pod.HostIPC {
				t.Error("the pod shares a host namespace")
			}
			psc := pod.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
				t.Errorf("pod securityContext %+v, want runAsNonRoot and runAsUser 65532", psc)
			}
			if psc == nil || psc.FSGroup == nil || *psc.FSGroup != 65532 {
				t.Error("pod fsGroup is not 65532: the projected AWS web identity token may be unreadable")
			}
			if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Error("pod seccompProfile is not RuntimeDefault")
			}
			if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
				t.Fatalf("%d containers and %d init containers, want 1 and 0", len(pod.Containers), len(pod.InitContainers))
			}
			c := pod.Containers[0]
			sc := c.SecurityContext
			if sc == nil {
				t.Fatal("container has no securityContext")
			}
			checks := []struct {
				what string
				ok   bool
			}{
				{"runAsNonRoot", sc.RunAsNonRoot != nil && *sc.RunAsNonRoot},
				{"runAsUser 65532", sc.RunAsUser != nil && *sc.RunAsUser == 65532},
				{"readOnlyRootFilesystem", sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem},
				{"allowPrivilegeEscalation false", sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation},
				{"not privileged", sc.Privileged == nil || !*sc.Privileged},
				{"capabilities drop ALL, add none", sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0},
				{"seccomp RuntimeDefault", sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
			}
			for _, ck := range checks {
				if !ck.ok {
					t.Errorf("container securityContext: not %s: %+v", ck.what, sc)
				}
			}

			port := intstr.FromString("metrics")
			probes := []struct {
				name  string
				probe *corev1.Probe
				path  string
			}{
				{"liveness", c.LivenessProbe, "/healthz"},
				{"readiness", c.ReadinessProbe, "/readyz"},
				{"startup", c.StartupProbe, "/healthz"},
			}
			for _, p := range probes {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("%s probe: none, want GET %s", p.name, p.path)
					continue
				}
				if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != port {
					t.Errorf("%s probe: GET %s on port %s, want %s on metrics", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
				}
			}
			if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" {
				t.Fatalf("container ports %+v, want one named metrics", c.Ports)
			}
			if got := holderEnv(t, c); got != `{"name":"LWA_ROTATOR_HOLDER","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}` {
				t.Errorf("LWA_ROTATOR_HOLDER %s, want the pod's name from the downward API", got)
			}
			wantListen := []string{"--listen", "0.0.0.0:" + strconv.Itoa(int(c.Ports[0].ContainerPort))}
			if !containsSeq(c.Args, wantListen) || !containsSeq(c.Args, []string{"--config", "/etc/lwa-rotator/config.yaml"}) || c.Args[0] != "run" {
				t.Errorf("args %q, want run --config /etc/lwa-rotator/config.yaml %s", c.Args, strings.Join(wantListen, " "))
			}

			req, lim := c.Resources.Requests, c.Resources.Limits
			if req.Memory().IsZero() || req.Cpu().IsZero() || lim.Memory().IsZero() {
				t.Errorf("resources %+v: want memory and CPU requests and a memory limit", c.Resources)
			}
			// Measured idle RSS at 1,000 applications is 46 MiB; the Go heap may double under load.
			if lim.Memory().Cmp(resource.MustParse("92Mi")) < 0 || req.Memory().Cmp(*lim.Memory()) > 0 {
				t.Errorf("memory request %s and limit %s: want request <= limit and limit >= 92Mi", req.Memory(), lim.Memory())
			}

			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				mounts[m.MountPath] = m
			}
			vols := map[string]corev1.Volume{}
			for _, v := range pod.Volumes {
				vols[v.Name] = v
			}
			cfgMount, ok := mounts["/etc/lwa-rotator"]
			if !ok || !cfgMount.ReadOnly || cfgMount.SubPath != "" {
				t.Errorf("config mount %+v: want /etc/lwa-rotator read-only, without subPath", cfgMount)
			}
			cm := vols[cfgMount.Name].ConfigMap
			if cm == nil || cm.Name != o.configMaps[0].Name || len(cm.Items) != 1 || cm.Items[0].Key != "config.yaml" || cm.Items[0].Path != "config.yaml" {
				t.Errorf("config volume %+v: want config.yaml of ConfigMap %s", cm, o.configMaps[0].Name)
			}
			tmp := vols[mounts["/tmp"].Name].EmptyDir
			if tmp == nil || tmp.Medium != corev1.StorageMediumMemory || tmp.SizeLimit == nil {
				t.Errorf("/tmp volume %+v: want a size-limited memory emptyDir", tmp)
			}
			if len(mounts) != 2 {
				t.Errorf("mounts %v: want only /etc/lwa-rotator and /tmp", c.VolumeMounts)
			}

			if pod.ServiceAccountName != o.serviceAccounts[0].Name {
				t.Errorf("serviceAccountName %q, want the chart's %q", pod.ServiceAccountName, o.serviceAccounts[0].Name)
			}
			if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				t.Errorf("Deployment selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
			}
		})
	}
}

// TestConfigIsAcceptedByTheDaemon parses the rendered config file with the daemon's own parser,
// which refuses unknown keys: the ci/ value files must be valid configurations, and the defaults
// must fail only on validation (the required queues, key and applications), never on a key.
func TestConfigIsAcceptedByTheDaemon(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		if !vs.validConfig {
			continue
		}
		t.Run(vs.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse(configFile(t, render(t, vs.args...)), nil)
			if err != nil {
				t.Fatalf("the daemon refuses the rendered configuration: %v", err)
			}
			if len(c.Applications) == 0 {
				t.Error("no applications")
			}
		})
	}
	t.Run("default values", func(t *testing.T) {
		t.Parallel()
		_, err := config.Parse(configFile(t, render(t)), nil)
		var ve *config.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("want a validation error for the missing required settings, got %v", err)
		}
		for _, p := range ve.Problems {
			field, _, _ := strings.Cut(p, ":")
			field, _, _ = strings.Cut(field, " (line ")
			switch field {
			case "queues.expiry", "queues.newSecret", "kmsKeyId", "applications":
			default:
				t.Errorf("default values: unexpected problem %q", p)
			}
		}
	})
}

func configFile(t *testing.T, o *objects) []byte {
	t.Helper()
	raw, ok := o.configMaps[0].Data["config.yaml"]
	if !ok || len(o.configMaps[0].Data) != 1 {
		t.Fatalf("ConfigMap data keys %v, want only config.yaml", keys(o.configMaps[0].Data))
	}
	return []byte(raw)
}

// TestConfigChangeRollsThePod: the daemon reloads only on SIGHUP, which nothing in the pod can
// send, so a changed configuration must change the pod template.
func TestConfigChangeRollsThePod(t *testing.T) {
	t.Parallel()
	checksum := func(extra ...string) string {
		return render(t, extra...).deployments[0].Spec.Template.Annotations["checksum/config"]
	}
	base, same, changed := checksum(), checksum("--set", "replicaCount=1"), checksum("--set", "config.logLevel=warn")
	if base == "" {
		t.Fatal("no checksum/config annotation on the pod template")
	}
	if same != base {
		t.Errorf("checksum changed without a config change: %s -> %s", base, same)
	}
	if changed == base {
		t.Errorf("checksum %s unchanged after config.logLevel changed", base)
	}
}

func TestServiceAccountCarriesTheRole(t *testing.T) {
	t.Parallel()
	const annotation = "eks.amazonaws.com/role-arn"
	full := render(t, valueSets[1].args...).serviceAccounts[0]
	if got := full.Annotations[annotation]; got != "arn:aws:iam::123456789012:role/lwa-rotator" {
		t.Errorf("full values: %s = %q, want the role of full-values.yaml", annotation, got)
	}
	def := render(t).serviceAccounts[0]
	if _, ok := def.Annotations[annotation]; ok {
		t.Errorf("default values: %s set without serviceAccount.roleArn", annotation)
	}
	for _, sa := range []*corev1.ServiceAccount{full, def} {
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s mounts an API token by default", sa.Name)
		}
	}
}

// TestMetricsAreScrapedAsJobLwaRotator: the Service reaches the pod's metrics port, keeps a pod
// that is not ready, and the ServiceMonitor selects it and names the job as the alert rules
// expect.
func TestMetricsAreScrapedAsJobLwaRotator(t *testing.T) {
	t.Parallel()
	o := render(t, valueSets[1].args...)
	svc, pod := o.services[0], o.deployments[0].Spec.Template
	if !selects(svc.Spec.Selector, pod.Labels) {
		t.Errorf("Service selector %v does not select the pod %v", svc.Spec.Selector, pod.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].TargetPort != intstr.FromString("metrics") {
		t.Errorf("Service ports %+v, want one metrics port", svc.Spec.Ports)
	}
	if !svc.Spec.PublishNotReadyAddresses {
		t.Error("Service drops a pod that is not ready: LWARotatorNotReady could never fire")
	}
	sm := o.serviceMonitors[0]
	if !selects(sm.Spec.Selector.MatchLabels, svc.Labels) || len(sm.Spec.Selector.MatchExpressions) != 0 {
		t.Errorf("ServiceMonitor selector %+v does not select the Service %v", sm.Spec.Selector, svc.Labels)
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
		t.Errorf("ServiceMonitor namespaces %v, want [%s]", sm.Spec.NamespaceSelector.MatchNames, namespace)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("%d endpoints, want 1", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Port != "metrics" || ep.Path != "/metrics" {
		t.Errorf("endpoint port %q path %q, want metrics /metrics", ep.Port, ep.Path)
	}
	jobSet := false
	for _, r := range ep.RelabelConfigs {
		if r.TargetLabel == "job" && r.Replacement != nil && *r.Replacement == "lwa-rotator" &&
			(r.Action == "" || strings.EqualFold(r.Action, "replace")) && len(r.SourceLabels) == 0 {
			jobSet = true
		}
	}
	if !jobSet {
		t.Errorf("relabelings %+v do not set job=\"lwa-rotator\" (LWARotatorAbsent selects it)", ep.RelabelConfigs)
	}
	if sm.Labels["release"] != "kube-prometheus-stack" || o.prometheusRules[0].Labels["release"] != "kube-prometheus-stack" {
		t.Error("serviceMonitor.labels / prometheusRule.labels not applied")
	}
}

func TestNetworkPolicyAllowsOnlyMetricsInAndHTTPSAndDNSOut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		extra     []string
		wantAgent bool
	}{
		{"full values", valueSets[1].args, true},
		{"defaults with the policy on", []string{"--set", "networkPolicy.enabled=true"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := render(t, tc.extra...)
			if len(o.networkPolicies) != 1 {
				t.Fatalf("%d NetworkPolicies, want 1", len(o.networkPolicies))
			}
			np := o.networkPolicies[0]
			if !selects(np.Spec.PodSelector.MatchLabels, o.deployments[0].Spec.Template.Labels) {
				t.Errorf("podSelector %v does not select the pod", np.Spec.PodSelector.MatchLabels)
			}
			types := []string{}
			for _, pt := range np.Spec.PolicyTypes {
				types = append(types, string(pt))
			}
			sort.Strings(types)
			if !slices.Equal(types, []string{"Egress", "Ingress"}) {
				t.Errorf("policyTypes %v, want Ingress and Egress", types)
			}
			if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 ||
				*np.Spec.Ingress[0].Ports[0].Port != intstr.FromString("metrics") || *np.Spec.Ingress[0].Ports[0].Protocol != corev1.ProtocolTCP {
				t.Errorf("ingress %+v, want only TCP to the metrics port", np.Spec.Ingress)
			}
			if len(np.Spec.Ingress) == 1 && len(np.Spec.Ingress[0].From) == 0 {
				t.Error("ingress admits every source; the chart's values name the scrapers")
			}
			agent := false
			for _, rule := range np.Spec.Egress {
				if len(rule.Ports) == 0 {
					t.Errorf("egress rule %+v allows every port", rule)
				}
				for _, p := range rule.Ports {
					port := p.Port.String() + "/" + string(*p.Protocol)
					switch port {
					case "443/TCP", "53/UDP", "53/TCP":
					case "80/TCP":
						// Only the EKS Pod Identity agent's link-local addresses.
						for _, peer := range rule.To {
							if peer.IPBlock == nil || (peer.IPBlock.CIDR != "169.254.170.23/32" && peer.IPBlock.CIDR != "fd00:ec2::23/128") {
								t.Errorf("port 80 open to %+v", peer)
							}
						}
						agent = len(rule.To) > 0
					default:
						t.Errorf("egress to %s", port)
					}
				}
			}
			if agent != tc.wantAgent {
				t.Errorf("Pod Identity agent allowed: %v, want %v", agent, tc.wantAgent)
			}
		})
	}
}

// TestPrometheusRuleIsTheRulesFile: the rendered PrometheusRule holds exactly the groups of
// deploy/prometheus/lwa-rotator.rules.yml, which itself decodes strictly into the operator's types.
func TestPrometheusRuleIsTheRulesFile(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(repoRulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var want monitoringv1.PrometheusRuleSpec
	if err := decodeStrict(raw, &want); err != nil {
		t.Fatalf("%s does not decode as a PrometheusRule spec: %v", repoRulesPath, err)
	}
	if len(want.Groups) == 0 || len(want.Groups[0].Rules) == 0 {
		t.Fatalf("%s: no rules", repoRulesPath)
	}
	got := render(t, valueSets[1].args...).prometheusRules[0].Spec
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("PrometheusRule spec differs from %s\n got: %.2000s\nwant: %.2000s", repoRulesPath, g, w)
	}
}

func TestRulesCopyIsIdentical(t *testing.T) {
	t.Parallel()
	repo, err := os.ReadFile(repoRulesPath)
	if err != nil {
		t.Fatal(err)
	}
	chart, err := os.ReadFile(chartRulesPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(repo, chart) {
		t.Errorf("%s differs from %s (the source): run `go generate ./deploy/helm`", chartRulesPath, repoRulesPath)
	}
}

// TestChartRefusesBadValues: the schema and the templates stop mistakes the daemon would only
// report from a crash-looping pod, or never.
func TestChartRefusesBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, set, wantInErr string
	}{
		{"secret pasted into the config", "config.clientSecret=amzn1.oa2-cs.v1.x", "clientSecret"},
		{"misspelt config key", "config.queues.expiryQueue=x", "expiryQueue"},
		{"misspelt application key", "config.applications[0].clientID=x", "clientID"},
		{"listen belongs to the chart", "config.listen=127.0.0.1:9464", "listen"},
		{"test-only endpoints", "config.endpoints.lwa=http://127.0.0.1:1", "endpoints"},
		{"bad duration", "config.renewBefore=30days", "renewBefore"},
		{"misspelt top-level value", "serviceMonitor.enable=true", "enable"},
		{"grace period shorter than the drain", "terminationGracePeriodSeconds=30", "terminationGracePeriodSeconds"},
		{"holder belongs to the chart", "config.holder=rotator-1", "holder"},
		{"a budget that blocks every drain", "podDisruptionBudget.maxUnavailable=0", "maxUnavailable"},
		{"unknown spread policy", "topologySpread.zone.whenUnsatisfiable=Sometimes", "whenUnsatisfiable"},
		{"strategy Kubernetes has not", "updateStrategy.type=OnDelete", "updateStrategy"},
		{"one holder name for every replica", "extraEnv[0].name=LWA_ROTATOR_HOLDER,extraEnv[0].value=rotator", "LWA_ROTATOR_HOLDER"},
		{"a rollout that can never progress", "updateStrategy.rollingUpdate.maxSurge=0", "maxSurge and maxUnavailable cannot both be 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := runHelm(t, "template", releaseName, chartDir, "--set", tc.set)
			if err == nil {
				t.Fatalf("helm template --set %s succeeded", tc.set)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error does not name %q: %v", tc.wantInErr, err)
			}
		})
	}
	t.Run("the template's own check", func(t *testing.T) {
		t.Parallel()
		// Bypasses the schema to prove deployment.yaml refuses a short grace period by itself.
		_, err := runHelm(t, "template", releaseName, chartDir, "--skip-schema-validation", "--set", "terminationGracePeriodSeconds=30")
		if err == nil || !strings.Contains(err.Error(), "must exceed 35") {
			t.Errorf("want the template's grace-period error, got %v", err)
		}
	})
}

// TestSchemaCoversTheDaemonConfig keeps values.schema.json's config block equal to the daemon's
// configuration keys (config.Config's yaml tags), minus those the chart owns or forbids.
func TestSchemaCoversTheDaemonConfig(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema schemaNode
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	cfg, ok := schema.Properties["config"]
	if !ok {
		t.Fatal("values.schema.json has no config property")
	}
	got := schemaPaths(cfg, "")
	// holder is the chart's like listen: each pod passes its own name as LWA_ROTATOR_HOLDER, where
	// one value in the shared file would name every replica alike.
	notInChart := map[string]bool{"listen": true, "holder": true, "endpoints": true, "allowInsecureLoopback": true}
	var want []string
	for _, p := range yamlPaths(reflect.TypeFor[config.Config](), "") {
		if !notInChart[strings.SplitN(p, ".", 2)[0]] {
			want = append(want, p)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("schema config keys\n got %v\nwant %v", got, want)
	}
}

type schemaNode struct {
	Properties           map[string]schemaNode `json:"properties"`
	Items                *schemaNode           `json:"items"`
	AdditionalProperties json.RawMessage       `json:"additionalProperties"`
}

// schemaPaths lists the leaf keys of a schema object; every object on the way must refuse
// unknown keys, as the daemon does.
func schemaPaths(n schemaNode, prefix string) []string {
	if n.Items != nil && n.Items.Properties != nil {
		return schemaPaths(*n.Items, prefix+"[]")
	}
	if n.Properties == nil {
		return []string{prefix}
	}
	var out []string
	if string(n.AdditionalProperties) != "false" {
		out = append(out, prefix+" (admits unknown keys)")
	}
	for k, v := range n.Properties {
		out = append(out, schemaPaths(v, join(prefix, k))...)
	}
	return out
}

// yamlPaths lists the leaf yaml keys of a config struct type.
func yamlPaths(t reflect.Type, prefix string) []string {
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Struct {
			return yamlPaths(t.Elem(), prefix+"[]")
		}
		return []string{prefix}
	case reflect.Struct:
		var out []string
		for i := range t.NumField() {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			out = append(out, yamlPaths(f.Type, join(prefix, name))...)
		}
		return out
	default:
		return []string{prefix}
	}
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func containsSeq(s, seq []string) bool {
	for i := 0; i+len(seq) <= len(s); i++ {
		if slices.Equal(s[i:i+len(seq)], seq) {
			return true
		}
	}
	return false
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
