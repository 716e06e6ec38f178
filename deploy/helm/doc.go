// Package helm holds the tests of the Helm chart in lwa-rotator/: lint and render it with the
// real helm binary, decode every rendered object strictly into the Kubernetes and
// prometheus-operator API types, and check what the chart promises (security context, probes,
// grace period, the replica settings (update strategy, disruption budget, zone and node spread,
// each pod's own claim holder name), the daemon accepting the rendered configuration, the alert
// rules being the ones in deploy/prometheus).
//
// The chart's files/lwa-rotator.rules.yml is a copy of deploy/prometheus/lwa-rotator.rules.yml,
// the one source (promtool tests it): Helm cannot read files outside the chart. Refresh it with
// `go generate ./deploy/helm`; TestRulesCopyIsIdentical fails until the two are equal.
package helm

//go:generate cp ../prometheus/lwa-rotator.rules.yml lwa-rotator/files/lwa-rotator.rules.yml
