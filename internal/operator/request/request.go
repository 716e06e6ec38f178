// Package request asks the daemon, through the vault, to rotate one application now: it writes
// the lwa-rotator:request-* tags on the application's secret (one TagResource), so it works from
// any machine with the operator's IAM rights and CloudTrail records who asked. Whichever replica
// of the daemon reads the tags first serves the request. Whether a request can be served is the
// daemon's own question: the secret is read with the daemon's read (vault.Store.Read) and judged
// with rotator.CanRequest, and what the daemon will then do is rotator.Decide's answer.
package request

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/rotator/window"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// Reader is the daemon's read of one secret; *vault.Store satisfies it.
type Reader interface {
	Read(ctx context.Context, secretID string) (vault.Snapshot, error)
}

// Tagger is the one write a request makes; *secretsmanager.Client satisfies it.
type Tagger interface {
	TagResource(ctx context.Context, params *secretsmanager.TagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
}

// ErrRefused marks a request not written because it could not be served now; the error says why.
var ErrRefused = errors.New("rotation request refused")

// Model is how the daemon sees the application: the rotation model's App and the daemon's
// Settings (daemon.RotatorApps, daemon.RotatorSettings).
type Model struct {
	App      rotator.App
	Settings rotator.Settings
}

// Requested is a request written, with what the daemon will do about it.
type Requested struct {
	// Snapshot is the read the request was judged on; Wait compares AWSCURRENT against it.
	Snapshot vault.Snapshot
	Request  vault.RotationRequest
	// Decision is the daemon's decision on that read with the request in it: phase due, reason
	// operator-request, unless a backoff makes it wait.
	Decision rotator.Decision
}

// Check says why a request could not be served at now, or nil: rotator.CanRequest, with the
// phase the daemon is in and the moment it acts next. It is pure.
func Check(m Model, snap vault.Snapshot, now time.Time) error {
	in := rotator.Input{App: m.App, Snapshot: snap}
	if ok, why := rotator.CanRequest(in, m.Settings, now); !ok {
		d := rotator.Decide(in, m.Settings, now)
		next := "nothing is planned"
		if !d.NextActionAt.IsZero() {
			next = "the daemon acts next at " + stamp(d.NextActionAt)
		}
		return fmt.Errorf("%w: %s (phase %s, %s)", ErrRefused, why, d.Phase, next)
	}
	return nil
}

// Request writes a rotation request for the application, unless Check refuses it.
func Request(ctx context.Context, r Reader, t Tagger, clk clock.Clock, m Model, by, reason string) (Requested, error) {
	id := m.App.SecretID
	snap, err := r.Read(ctx, id)
	if errors.Is(err, vault.ErrNoCurrent) {
		return Requested{}, fmt.Errorf("%w: the secret has no AWSCURRENT version to rotate (store one with lwa-rotator seed)", ErrRefused)
	}
	if err != nil {
		return Requested{}, err
	}
	now := clk.Now()
	if err := Check(m, snap, now); err != nil {
		return Requested{Snapshot: snap}, err
	}
	req := vault.RotationRequest{At: now.UTC(), By: by, Reason: reason}
	tags, err := vault.RequestTags(req)
	if err != nil {
		return Requested{Snapshot: snap}, err
	}
	if _, err := t.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(id), Tags: tags}); err != nil {
		return Requested{Snapshot: snap}, fmt.Errorf("writing the rotation request on secret %s: %w", id, err)
	}
	// The tags just written are the only change: the daemon's next read is this one with them.
	with := snap
	with.State.Request = req
	return Requested{Snapshot: snap, Request: req, Decision: rotator.Decide(rotator.Input{App: m.App, Snapshot: with}, m.Settings, now)}, nil
}

// Progress is what one of Wait's reads found: the daemon's decision on it, or the read's error.
type Progress struct {
	Decision rotator.Decision
	Snapshot vault.Snapshot
	Err      error
}

// Wait reads the secret every poll until AWSCURRENT leaves fromVersion, and returns the new
// version id. progress is told each change of the decision's phase or reason (or of the read's
// error). It gives up when ctx ends.
func Wait(ctx context.Context, r Reader, clk clock.Clock, m Model, fromVersion string, poll time.Duration, progress func(Progress)) (string, error) {
	last := ""
	for {
		snap, err := r.Read(ctx, m.App.SecretID)
		var p Progress
		key := ""
		switch {
		case err == nil && snap.Current.ID != fromVersion:
			return snap.Current.ID, nil
		case err == nil:
			p = Progress{Decision: rotator.Decide(rotator.Input{App: m.App, Snapshot: snap}, m.Settings, clk.Now()), Snapshot: snap}
			key = p.Decision.Phase.String() + "/" + string(p.Decision.Reason)
		case ctx.Err() == nil:
			p, key = Progress{Err: err}, "unreadable: "+err.Error()
		}
		if key != "" && key != last {
			last = key
			progress(p)
		}
		if !clock.Sleep(ctx, clk, poll) {
			return "", fmt.Errorf("waiting for the rotation of secret %s (last seen: %s): %w", m.App.SecretID, last, ctx.Err())
		}
	}
}

// windowStep bounds one sleep of UntilWindow. A timer runs on the monotonic clock, which stands
// still while the machine is suspended: waking every minute to read the wall clock again keeps a
// laptop that slept through the opening from requesting long after it.
const windowStep = time.Minute

// ErrWindowNeverOpens: the schedule has no range, so no window ever opens.
var ErrWindowNeverOpens = errors.New("the rotation window never opens")

// UntilWindow waits on clk until w is open and returns that instant: at once when w is open
// already (the zero Schedule, no window, always is). opens is told each opening it starts waiting
// for, before it waits; a second one only if the first was missed (the machine slept through the
// whole window). It gives up when ctx ends, having written nothing.
func UntilWindow(ctx context.Context, clk clock.Clock, w window.Schedule, opens func(at time.Time)) (time.Time, error) {
	var told time.Time
	for {
		now := clk.Now()
		at, _, ok := w.Next(now)
		switch {
		case !ok:
			return time.Time{}, ErrWindowNeverOpens
		case !at.After(now):
			return now, nil
		case !at.Equal(told):
			told = at
			opens(at)
		}
		if !clock.Sleep(ctx, clk, min(at.Sub(now), windowStep)) {
			return time.Time{}, fmt.Errorf("waiting for the rotation window to open at %s: %w", stamp(at), ctx.Err())
		}
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
