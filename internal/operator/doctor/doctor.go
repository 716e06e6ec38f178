// Package doctor checks, read-only, everything that must be true for Amazon to deliver SP-API
// notifications to the configured queues and for the daemon to rotate each application's
// secret, and turns what it finds into a checklist with the fix for every failure.
//
// Gather makes the AWS, LWA and HTTPS calls and records what they answered (Facts); Check is a
// pure function of the configuration and the Facts. Nothing here writes to AWS or calls the
// rotate endpoint.
package doctor

import (
	"context"
	"net/http"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/rotator"
)

// Status is the outcome of one check.
type Status string

// The three outcomes. A warning does not make doctor exit non-zero.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Item is one line of the checklist.
type Item struct {
	// ID names the check (queue-policy, secret-key, …); docs/operations.md lists them all.
	ID string `json:"id"`
	// Subject is what was checked: a queue URL, an application name, a key id or a region.
	Subject string `json:"subject"`
	Status  Status `json:"status"`
	// Summary says what was found, by name and id only.
	Summary string `json:"summary"`
	// Fix is what to do, for warnings and failures: for a policy, the exact statement to add.
	Fix string `json:"fix,omitempty"`
}

// Report is the whole checklist.
type Report struct {
	Items  []Item `json:"checks"`
	Failed int    `json:"failed"`
	Warned int    `json:"warned"`
}

// OK reports whether no check failed (warnings allowed).
func (r Report) OK() bool { return r.Failed == 0 }

func newReport(items []Item) Report {
	r := Report{Items: items}
	for _, it := range items {
		switch it.Status {
		case Fail:
			r.Failed++
		case Warn:
			r.Warned++
		}
	}
	return r
}

// Deps are the clients doctor reads through. HTTP, when nil, is a client with TLS 1.2 or newer
// and short timeouts.
type Deps struct {
	SQS            QueueReader
	KMS            KeyReader
	SecretsManager SecretReader
	LWA            TokenMinter
	HTTP           *http.Client
	// Vault is the daemon's own read of a secret, whose snapshot the rotation check judges with
	// the daemon's decision; nil skips that check. Apps and Settings are the daemon's translation
	// of the configuration (daemon.RotatorApps, daemon.RotatorSettings). Clock, nil for the real
	// one, times the reads.
	Vault    Reader
	Apps     []rotator.App
	Settings rotator.Settings
	Clock    clock.Clock
}

// Run gathers the facts and checks them.
func Run(ctx context.Context, cfg *config.Config, d Deps) Report {
	return Check(cfg, Gather(ctx, cfg, d))
}
