// Package status reports where each application's rotation stands, from Secrets Manager alone
// (no daemon needed). It reads each secret with the daemon's own read (vault.Store.Read: one
// DescribeSecret, plus GetSecretValue of AWSCURRENT and of AWSPENDING if any) and judges it with
// the daemon's own decision (rotator.Decide); Assess only says which of the decision's answers
// need an operator.
package status

import (
	"context"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// Reader is the daemon's read of one secret; *vault.Store satisfies it.
type Reader interface {
	Read(ctx context.Context, secretID string) (vault.Snapshot, error)
}

// State is one application's read. It holds the secret values (vault.Snapshot), which redact
// themselves; nothing in this package prints them.
type State struct {
	App      rotator.App
	Snapshot vault.Snapshot
	// ReadErr: the secret could not be read; it wraps vault.ErrNoCurrent when the secret exists
	// without an AWSCURRENT version, vault.ErrNotFound when it does not exist.
	ReadErr error
}

// Read reads one application's secret.
func Read(ctx context.Context, r Reader, app rotator.App) State {
	snap, err := r.Read(ctx, app.SecretID)
	return State{App: app, Snapshot: snap, ReadErr: err}
}

// ReadAll reads every application in order.
func ReadAll(ctx context.Context, r Reader, apps []rotator.App) []State {
	out := make([]State, 0, len(apps))
	for _, a := range apps {
		out = append(out, Read(ctx, r, a))
	}
	return out
}
