package rotator

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/vault"
)

// listedFor asks the vault to answer for the due applications at once (Vault.ReadListed), all
// but those an event marked since they were first read: a trigger, a notice, a request or a
// promotion is planned on a fresh read. The vault decides whether that is worth a listing and
// leaves out the secrets it wrote lately; whatever it leaves out, or a failure, costs only the
// reads the pass makes anyway.
func (r *Rotator) listedFor(ctx context.Context, due []*appState) map[*appState]vault.Snapshot {
	ids := make([]string, 0, len(due))
	for _, a := range due {
		if a.mayList(a.dirty.Load()) {
			ids = append(ids, a.app.Load().SecretID)
		}
	}
	snaps, err := r.vault.ReadListed(ctx, ids)
	if err != nil {
		r.log.Debug("reading the secrets of a pass from a listing; reading them one by one", zap.Int("applications", len(ids)), zap.Error(err))
	}
	out := make(map[*appState]vault.Snapshot, len(snaps))
	for _, a := range due {
		if s, ok := snaps[a.app.Load().SecretID]; ok {
			out[a] = s
		}
	}
	return out
}

// mayList: a listed snapshot may stand for the application's pass unless something happened to
// it that the pass must plan for (dirty). An application not yet read counts even though it is
// marked (a start-up or a reload added it), since nothing happened to it yet.
func (a *appState) mayList(dirty bool) bool { return !dirty || !a.status.Load().Known }

// planListed plans on a listed snapshot, which may lag the vault, and reports whether that
// settled the pass: only when the application may still be planned on one (dirty is whether it
// was marked for this pass), the plan does nothing but wait, and the snapshot shows the
// AWSCURRENT this process knows (a moved one is proven on a fresh read). Otherwise the pass
// reads the secret and plans again. The caller holds a.work.
func (r *Rotator) planListed(a *appState, snap vault.Snapshot, dirty bool) (time.Time, bool) {
	app := *a.app.Load()
	if !snap.Listed || app.SecretID != snap.SecretID || !a.mayList(dirty) || (a.knownCurrent != "" && snap.Current.ID != a.knownCurrent) {
		return time.Time{}, false
	}
	f := facts{app: app, snap: snap, manual: a.manual(snap.Current.Record), probeAt: a.probeAt, knownCurrent: a.knownCurrent, holder: r.holder}
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
