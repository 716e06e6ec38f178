package helm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// externalSecret is the part of external-secrets' ExternalSecret (external-secrets.io/v1 and
// v1beta1 agree on it) that the chart renders. The operator's Go types are not available as a
// module here, so this local copy stands in for them: it holds only fields the API defines, with
// their JSON names, and the strict decoding refuses anything else the template might add.
type externalSecret struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		RefreshInterval string `json:"refreshInterval"`
		SecretStoreRef  struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"secretStoreRef"`
		Target struct {
			Name           string `json:"name"`
			CreationPolicy string `json:"creationPolicy"`
		} `json:"target"`
		Data []struct {
			SecretKey string `json:"secretKey"`
			RemoteRef struct {
				Key      string `json:"key"`
				Property string `json:"property"`
			} `json:"remoteRef"`
		} `json:"data"`
	} `json:"spec"`
}

const externalSecretValues = `consumers:
  externalSecrets:
    enabled: true
    apiVersion: external-secrets.io/v1
    refreshInterval: 30m
    secretStoreRef: {name: aws-secrets-manager, kind: ClusterSecretStore}
    items:
      - name: main-app-lwa
        namespace: orders
        secretId: lwa-rotator/main-app
        data: {LWA_CLIENT_ID: clientId, LWA_CLIENT_SECRET: clientSecret}
      - name: eu-app-lwa
        secretId: lwa-rotator/eu-app
        data: {CLIENT_SECRET: AppClientSecret}
`

func writeValues(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExternalSecretsOnlyWhenEnabled(t *testing.T) {
	t.Parallel()
	for _, vs := range valueSets {
		want := 0
		if vs.name == "ci/full-values.yaml" {
			want = 1 // it enables every option
		}
		if n := len(render(t, vs.args...).externalSecrets); n != want {
			t.Errorf("%s renders %d ExternalSecrets, want %d", vs.name, n, want)
		}
	}
	if es := render(t, "-f", fullValues).externalSecrets; len(es) == 1 && es[0].APIVersion != "external-secrets.io/v1beta1" {
		t.Errorf("apiVersion %s, want the chosen external-secrets.io/v1beta1", es[0].APIVersion)
	}
}

func TestExternalSecretsRefreshInsideTheWindow(t *testing.T) {
	t.Parallel()
	o := render(t, "-f", fullValues, "-f", writeValues(t, externalSecretValues))
	if len(o.externalSecrets) != 2 {
		t.Fatalf("rendered %d ExternalSecrets, want 2", len(o.externalSecrets))
	}
	want := map[string]struct {
		namespace, secretID string
		data                map[string]string
	}{
		"main-app-lwa": {"orders", "lwa-rotator/main-app", map[string]string{"LWA_CLIENT_ID": "clientId", "LWA_CLIENT_SECRET": "clientSecret"}},
		"eu-app-lwa":   {namespace, "lwa-rotator/eu-app", map[string]string{"CLIENT_SECRET": "AppClientSecret"}},
	}
	for _, es := range o.externalSecrets {
		w, ok := want[es.Name]
		if !ok {
			t.Errorf("unexpected ExternalSecret %s", es.Name)
			continue
		}
		if es.APIVersion != "external-secrets.io/v1" || es.Namespace != w.namespace {
			t.Errorf("%s: %s in namespace %q, want external-secrets.io/v1 in %q", es.Name, es.APIVersion, es.Namespace, w.namespace)
		}
		d, err := time.ParseDuration(es.Spec.RefreshInterval)
		if err != nil || d != 30*time.Minute {
			t.Errorf("%s: refreshInterval %q (%v), want 30m", es.Name, es.Spec.RefreshInterval, err)
		}
		if es.Spec.SecretStoreRef.Name != "aws-secrets-manager" || es.Spec.SecretStoreRef.Kind != "ClusterSecretStore" {
			t.Errorf("%s: store %+v", es.Name, es.Spec.SecretStoreRef)
		}
		if es.Spec.Target.Name != es.Name || es.Spec.Target.CreationPolicy != "Owner" {
			t.Errorf("%s: target %+v", es.Name, es.Spec.Target)
		}
		got := map[string]string{}
		for _, item := range es.Spec.Data {
			if item.RemoteRef.Key != w.secretID {
				t.Errorf("%s: %s reads %s, want %s", es.Name, item.SecretKey, item.RemoteRef.Key, w.secretID)
			}
			got[item.SecretKey] = item.RemoteRef.Property
		}
		if len(got) != len(w.data) {
			t.Errorf("%s: data %v, want %v", es.Name, got, w.data)
		}
		for k, v := range w.data {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", es.Name, k, got[k], v)
			}
		}
	}
}

func TestExternalSecretsRefuseIntervalsThatRiskTheWindow(t *testing.T) {
	t.Parallel()
	base := strings.Replace(externalSecretValues, "refreshInterval: 30m", "refreshInterval: INTERVAL", 1)
	for _, tc := range []struct {
		interval string
		ok       bool
	}{{"1m", true}, {"1h", true}, {"84h", true}, {"85h", false}, {"7d", false}, {"0s", false}, {"168h", false}, {"0", false}} {
		_, err := runHelm(t, "template", releaseName, chartDir, "-f", fullValues, "-f",
			writeValues(t, strings.Replace(base, "INTERVAL", tc.interval, 1)))
		if (err == nil) != tc.ok {
			t.Errorf("refreshInterval %s: err = %v, want ok = %v", tc.interval, err, tc.ok)
		}
	}
	for name, values := range map[string]string{
		"a property the stored JSON lacks": strings.Replace(externalSecretValues, "LWA_CLIENT_SECRET: clientSecret}", "LWA_CLIENT_SECRET: secret}", 1),
		"no store":                         strings.Replace(externalSecretValues, "name: aws-secrets-manager, ", "name: \"\", ", 1),
	} {
		if _, err := runHelm(t, "template", releaseName, chartDir, "-f", fullValues, "-f", writeValues(t, values)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
