package rotator

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// lister is what a Vault may offer besides one read per secret: snapshots and request tags of
// many secrets in a few calls (vault.Store does, through ListSecrets and BatchGetSecretValue).
// Listings are eventually consistent, so the rotator only ever concludes "nothing to do" from
// one; whatever would act is planned again on a fresh Read.
type lister interface {
	ReadMany(ctx context.Context, ids []string) (map[string]vault.Snapshot, error)
	Requests(ctx context.Context, ids []string) (map[string]vault.RotationState, error)
}

const (
	// listMin is the number of applications due together from which a pass lists their secrets
	// instead of describing each: below it a listing (one call per 100 secrets in the account,
	// the daemon's or not) saves nothing.
	listMin = 10
	// listLag is how long after this process worked on an application a listing is not trusted
	// for it: Secrets Manager says a listing may not show the last five minutes' changes.
	listLag = 10 * time.Minute
)

// listed is an application's snapshot from a listing, and when the listing began.
type listed struct {
	snap vault.Snapshot
	at   time.Time
}

// listable: nothing this process did or heard of lately may be missing from a listing of the
// application's secret. An application not yet read counts even though it is marked for the
// pass (a start-up or a reload added it), since nothing happened to it yet.
func (a *appState) listable(since time.Time, dirty bool) bool {
	return (!dirty || !a.status.Load().Known) && since.Sub(time.Unix(0, a.lastActive.Load())) > listLag
}

// prefetch lists the secrets of the due applications that are listable, when there are enough
// of them and the vault can. A failure only costs the per-application reads the pass would have
// made anyway.
func (r *Rotator) prefetch(ctx context.Context, due []*appState) map[*appState]*listed {
	l, ok := r.vault.(lister)
	if !ok {
		return nil
	}
	now := r.clock.Now()
	var quiet []*appState
	for _, a := range due {
		if a.listable(now, a.dirty.Load()) {
			quiet = append(quiet, a)
		}
	}
	if len(quiet) < listMin {
		return nil
	}
	ids := make([]string, 0, len(quiet))
	for _, a := range quiet {
		ids = append(ids, a.app.Load().SecretID)
	}
	snaps, err := l.ReadMany(ctx, ids)
	if err != nil {
		r.log.Debug("listing the secrets of a pass; reading them one by one", zap.Int("applications", len(ids)), zap.Error(err))
		return nil
	}
	out := make(map[*appState]*listed, len(snaps))
	for _, a := range quiet {
		if s, ok := snaps[a.app.Load().SecretID]; ok {
			out[a] = &listed{snap: s, at: now}
		}
	}
	return out
}

// planListed plans on a listed snapshot and reports whether that settled the pass: only when
// the application is still listable, the plan does nothing but wait, and the listing shows the
// AWSCURRENT this process knows (a moved one is proven on a fresh read). dirty is whether the
// application was marked for this pass. The caller holds a.work.
func (r *Rotator) planListed(a *appState, app App, l listed, dirty bool) (time.Time, bool) {
	snap := l.snap
	if app.SecretID != snap.SecretID || !a.listable(l.at, dirty) || (a.knownCurrent != "" && snap.Current.ID != a.knownCurrent) {
		return time.Time{}, false
	}
	f := facts{app: app, snap: snap, manual: a.manual.Load(), probeAt: a.probeAt}
	s, now := r.settings(), r.clock.Now()
	act := plan(f, s, now, r.rand())
	if act.acts() {
		return time.Time{}, false
	}
	a.knownCurrent = snap.Current.ID
	if !act.nextProbe.IsZero() {
		a.probeAt = act.nextProbe
	}
	a.setStatus(func(st *Status) { publish(st, f, act, s, now) })
	return act.wakeAt, true
}

// acts reports whether a plan does anything but wait: a write, a call, or a line worth logging.
func (a action) acts() bool {
	return a.clearPending != "" || a.resume || a.watchdog || a.finished || a.save != nil || a.clearRequest ||
		a.invalidRequest || a.request || a.noExpiry || a.probe
}

// watchListedRequests is the request watch on a vault that can list: one listing of the
// secrets carrying a request tag per RequestPoll, whatever the number of applications. It
// reports false, at once or later, when the vault cannot list, for the per-secret watch to take
// over.
func (r *Rotator) watchListedRequests(ctx context.Context) bool {
	l, ok := r.vault.(lister)
	if !ok {
		return false
	}
	for {
		if !clock.Sleep(ctx, r.clock, r.requestPoll) {
			return true
		}
		reg := r.reg.Load()
		ids := make([]string, 0, len(reg.order))
		for _, a := range reg.order {
			ids = append(ids, a.app.Load().SecretID)
		}
		found, err := l.Requests(ctx, ids)
		if err != nil {
			if ctx.Err() != nil {
				return true
			}
			if errors.Is(err, vault.ErrListDenied) {
				r.log.Info("cannot list secrets; watching for rotation requests one secret at a time", zap.Error(err))
				return false
			}
			r.obs.RequestWatchRead(r.clock.Now(), err)
			r.log.Debug("listing rotation requests", zap.Error(err))
			continue
		}
		r.obs.RequestWatchRead(r.clock.Now(), nil)
		for _, a := range reg.order {
			if st, ok := found[a.app.Load().SecretID]; ok {
				r.noteRequest(a, st)
			}
		}
	}
}
