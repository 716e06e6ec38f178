package helm_test

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// holderEnv returns the container's LWA_ROTATOR_HOLDER variable as JSON, "" when it has none,
// and fails the test when it has it twice.
func holderEnv(t *testing.T, c corev1.Container) string {
	t.Helper()
	got := ""
	for _, e := range c.Env {
		if e.Name != "LWA_ROTATOR_HOLDER" {
			continue
		}
		if got != "" {
			t.Errorf("LWA_ROTATOR_HOLDER set twice: %v", c.Env)
		}
		got = mustJSON(t, e)
	}
	return got
}

// TestReplicas: one replica gets no budget and no spreading; several get a budget that never
// blocks a drain and a spread over zones and nodes; every pod claims under its own name, and the
// update strategy keeps the running daemon until its successor is ready.
func TestReplicas(t *testing.T) {
	t.Parallel()
	const (
		holder  = `{"name":"LWA_ROTATOR_HOLDER","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}`
		rolling = `{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":0,"maxSurge":1}}`
		budget  = `{"selector":{"matchLabels":{"app.kubernetes.io/instance":"lwa-rotator","app.kubernetes.io/name":"lwa-rotator"}},"maxUnavailable":1,"unhealthyPodEvictionPolicy":"AlwaysAllow"}`
		// The zone, then the node; each rollout's pods spread among themselves (pod-template-hash).
		spreadSoft = `[` +
			`{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{"matchLabels":{"app.kubernetes.io/instance":"lwa-rotator","app.kubernetes.io/name":"lwa-rotator"}},"matchLabelKeys":["pod-template-hash"]},` +
			`{"maxSkew":1,"topologyKey":"kubernetes.io/hostname","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{"matchLabels":{"app.kubernetes.io/instance":"lwa-rotator","app.kubernetes.io/name":"lwa-rotator"}},"matchLabelKeys":["pod-template-hash"]}]`
		spreadHardZone = `[` +
			`{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule","labelSelector":{"matchLabels":{"app.kubernetes.io/instance":"lwa-rotator","app.kubernetes.io/name":"lwa-rotator"}},"matchLabelKeys":["pod-template-hash"]},` +
			`{"maxSkew":1,"topologyKey":"kubernetes.io/hostname","whenUnsatisfiable":"ScheduleAnyway","labelSelector":{"matchLabels":{"app.kubernetes.io/instance":"lwa-rotator","app.kubernetes.io/name":"lwa-rotator"}},"matchLabelKeys":["pod-template-hash"]}]`
	)
	tests := []struct {
		name         string
		set          string // helm --set, "" for the defaults
		wantReplicas int32
		wantStrategy string
		wantBudget   string // the PodDisruptionBudget's spec, "" for none
		wantSpread   string // the pod's topologySpreadConstraints, "null" for none
	}{
		{"defaults: one replica", "", 1, rolling, "", "null"},
		{"three replicas", "replicaCount=3", 3, rolling, budget, spreadSoft},
		{"two replicas", "replicaCount=2", 2, rolling, budget, spreadSoft},
		{"one replica with the budget and spread asked for", "replicaCount=1,podDisruptionBudget.enabled=true,topologySpread.enabled=true", 1, rolling, "", "null"},
		{"no replica", "replicaCount=0", 0, rolling, "", "null"},
		{"three replicas, budget off", "replicaCount=3,podDisruptionBudget.enabled=false", 3, rolling, "", spreadSoft},
		{"three replicas, spread off", "replicaCount=3,topologySpread.enabled=false", 3, rolling, budget, "null"},
		{"three replicas, zones a hard rule", "replicaCount=3,topologySpread.zone.whenUnsatisfiable=DoNotSchedule", 3, rolling, budget, spreadHardZone},
		{"three replicas, budget of 2", "replicaCount=3,podDisruptionBudget.maxUnavailable=2", 3, rolling,
			`{"selector":{"matchLabels":{"app.kubernetes.io/instance":"lwa-rotator","app.kubernetes.io/name":"lwa-rotator"}},"maxUnavailable":2,"unhealthyPodEvictionPolicy":"AlwaysAllow"}`, spreadSoft},
		{"one replica, Recreate", "updateStrategy.type=Recreate", 1, `{"type":"Recreate"}`, "", "null"},
		{"three replicas, one down at a time without surge", "replicaCount=3,updateStrategy.rollingUpdate.maxSurge=0,updateStrategy.rollingUpdate.maxUnavailable=1", 3,
			`{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":1,"maxSurge":0}}`, budget, spreadSoft},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var args []string
			if tc.set != "" {
				args = []string{"--set", tc.set}
			}
			o := render(t, args...)
			d := o.deployments[0]
			if d.Spec.Replicas == nil || *d.Spec.Replicas != tc.wantReplicas {
				t.Errorf("replicas %v, want %d", d.Spec.Replicas, tc.wantReplicas)
			}
			if got := mustJSON(t, d.Spec.Strategy); got != tc.wantStrategy {
				t.Errorf("strategy\n got %s\nwant %s", got, tc.wantStrategy)
			}
			pod := d.Spec.Template.Spec
			if got := mustJSON(t, pod.TopologySpreadConstraints); got != tc.wantSpread {
				t.Errorf("topologySpreadConstraints\n got %s\nwant %s", got, tc.wantSpread)
			}
			if got := holderEnv(t, pod.Containers[0]); got != holder {
				t.Errorf("LWA_ROTATOR_HOLDER %s, want %s", got, holder)
			}
			switch {
			case tc.wantBudget == "" && len(o.disruptions) != 0:
				t.Errorf("PodDisruptionBudget rendered: %s", mustJSON(t, o.disruptions[0].Spec))
			case tc.wantBudget != "" && len(o.disruptions) != 1:
				t.Errorf("%d PodDisruptionBudgets, want 1", len(o.disruptions))
			case tc.wantBudget != "":
				pdb := o.disruptions[0]
				if got := mustJSON(t, pdb.Spec); got != tc.wantBudget {
					t.Errorf("PodDisruptionBudget spec\n got %s\nwant %s", got, tc.wantBudget)
				}
				if pdb.Name != "lwa-rotator" || pdb.Namespace != namespace {
					t.Errorf("PodDisruptionBudget %s/%s, want %s/lwa-rotator", pdb.Namespace, pdb.Name, namespace)
				}
				if !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
					t.Errorf("PodDisruptionBudget selector %v does not select the pods %v", pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
				}
			}
		})
	}
}
