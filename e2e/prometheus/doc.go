// Package prometheus holds end-to-end tests of the monitoring deliverables: a real Prometheus
// scrapes the sandbox with deploy/prometheus/lwa-rotator.rules.yml loaded and an alert fires, and
// the rules and the Grafana dashboard are checked against the metrics the daemon really exports.
// It has no non-test code.
package prometheus
