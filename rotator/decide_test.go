package rotator

import (
	"fmt"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The decisions are pure, so they are proven over a grid rather than by examples: every
// combination of the facts below, with the times drawn from values on both sides of every
// threshold the rules compare them with (and equal to it), and each result checked against the
// invariants it must keep whatever the combination.

var (
	gridNow      = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	gridSettings = Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
		ProbeEvery: 24 * time.Hour, CanaryEvery: 7 * 24 * time.Hour}
	gridApp   = App{Name: "app", ClientID: "amzn1.application-oa2-client.grid", SecretID: "s", ApplicationID: "amzn1.sp.solution.grid"}
	curSecret = secret.New("current")
	zero      time.Time
)

func at(d time.Duration) time.Time { return gridNow.Add(d) }

const day = 24 * time.Hour

// gridPoint is one combination of facts, named so a failure says which.
type gridPoint struct {
	name string
	f    facts
}

// pendingKind is what AWSPENDING holds in a grid point.
type pendingKind int

const (
	noPending pendingKind = iota
	pendingNewer
	pendingNotNewer
	pendingOtherClient
	numPendingKinds
)

type requestKind int

const (
	noRequest requestKind = iota
	requestPending
	requestServed
	requestInvalid
	numRequestKinds
)

// grid yields every combination; small enough (about 280,000) to run under -race in seconds.
func grid(yield func(gridPoint) bool) {
	gridOf([]string{"none", "manual", "canary"}, []time.Time{zero, at(-time.Minute), at(2 * time.Hour)}, yield)
}

// gridOf is the grid over the given triggers and probe times (judge reads neither).
func gridOf(triggers []string, probeAts []time.Time, yield func(gridPoint) bool) {
	expiries := []time.Time{zero, at(-time.Hour), at(10 * day), at(30 * day), at(60 * day)}
	previous := []time.Duration{0, -time.Hour, 3 * day} // relative to now; 0 = none
	requested := []time.Time{zero, at(-2 * time.Hour), at(-time.Hour), at(-10 * time.Minute)}
	nextAttempts := []time.Time{zero, at(-time.Minute), at(5 * time.Minute)}
	noticed := []time.Duration{0, -day, day, -170 * day} // relative to the expiry; 0 = none; -170 days: an older secret's notice
	for _, exp := range expiries {
		// lastCall is placed around the current secret's mint time, which decides answered().
		mint := exp.Add(-spapi.SecretLifetime)
		lastCalls := []time.Time{zero, mint.Add(-time.Hour), mint.Add(time.Hour), gridNow}
		if exp.IsZero() {
			lastCalls = []time.Time{zero, at(-time.Hour)}
		}
		for _, prev := range previous {
			for _, req := range requested {
				for _, last := range lastCalls {
					for _, next := range nextAttempts {
						for _, nt := range noticed {
							for _, trigger := range triggers {
								for rk := range numRequestKinds {
									for pk := range numPendingKinds {
										for _, probe := range probeAts {
											p := point(exp, prev, req, last, next, nt, trigger, rk, pk, probe)
											if !yield(p) {
												return
											}
										}
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

func point(exp time.Time, prev time.Duration, req, last, next time.Time, nt time.Duration, trigger string, rk requestKind, pk pendingKind, probe time.Time) gridPoint {
	cur := vault.Record{ClientID: gridApp.ClientID, ClientSecret: curSecret, ExpiresAt: exp}
	if prev != 0 {
		cur.PreviousExpiresAt = at(prev)
	}
	st := vault.RotationState{RequestedAt: req, LastCallAt: last, NextAttemptAt: next, RotationID: "r1"}
	if !req.IsZero() && last.IsZero() {
		st.LastCallAt = req // a rotate call always notes its time with the intent
	}
	if nt != 0 && !exp.IsZero() {
		st.NoticedExpiry = exp.Add(nt)
	}
	switch rk {
	case requestPending:
		st.Request = vault.RotationRequest{At: at(-5 * time.Minute), By: "op"}
	case requestServed:
		st.Request = vault.RotationRequest{At: at(-5 * time.Minute), By: "op"}
		st.ServedRequest = st.Request.At
	case requestInvalid:
		st.Request = vault.RotationRequest{Invalid: true}
	}
	snap := vault.Snapshot{SecretID: gridApp.SecretID, Current: vault.Version{ID: "v-cur", Record: cur}, State: st,
		Labels: map[string][]string{"v-cur": {vault.StageCurrent}}}
	base := exp
	if base.IsZero() {
		base = at(100 * day)
	}
	switch pk {
	case pendingNewer:
		snap.Pending = &vault.Version{ID: "v-pend", Record: vault.Record{ClientID: gridApp.ClientID, ClientSecret: secret.New("pending"), ExpiresAt: base.Add(180 * day)}}
	case pendingNotNewer:
		if exp.IsZero() {
			break // with no stored expiry every pending version counts as newer
		}
		snap.Pending = &vault.Version{ID: "v-pend", Record: vault.Record{ClientID: gridApp.ClientID, ClientSecret: secret.New("pending"), ExpiresAt: exp}}
	case pendingOtherClient:
		snap.Pending = &vault.Version{ID: "v-pend", Record: vault.Record{ClientID: "amzn1.application-oa2-client.other", ClientSecret: secret.New("pending"), ExpiresAt: base.Add(180 * day)}}
	}
	if snap.Pending != nil {
		snap.Labels["v-pend"] = []string{vault.StagePending}
	}
	// A canary's current secret was minted 8 days ago when it has an expiry, so it is due.
	app := gridApp
	if trigger == "canary" {
		app.Canary = true
	}
	name := fmt.Sprintf("exp=%s prev=%v req=%s last=%s next=%s noticed=%v trigger=%s request=%d pending=%d probe=%s",
		rel(exp), prev, rel(req), rel(st.LastCallAt), rel(next), nt, trigger, rk, pk, rel(probe))
	return gridPoint{name: name, f: facts{app: app, snap: snap, manual: trigger == "manual", probeAt: probe}}
}

func rel(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return "now" + fmt.Sprint(t.Sub(gridNow))
}

func TestPlanKeepsTheInvariantsOnEveryCombination(t *testing.T) {
	t.Parallel()
	n := 0
	phases := map[Phase]int{}
	for p := range grid {
		n++
		for _, jitter := range []float64{0, 0.999} {
			a := plan(p.f, gridSettings, gridNow, jitter)
			phases[a.phase]++
			for _, problem := range planProblems(p.f, a) {
				t.Errorf("%s (jitter %v): %s", p.name, jitter, problem)
			}
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d combinations; phases reached: %v", n, phases)
	for _, ph := range Phases {
		if ph != PhaseUnknown && phases[ph] == 0 {
			t.Errorf("no combination reached phase %s: the grid is too small to prove anything about it", ph)
		}
	}
}

// planProblems lists the invariants a plan breaks.
func planProblems(f facts, a action) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	st, cur, now, s := f.snap.State, f.snap.Current.Record, gridNow, gridSettings
	// A rotation whose latest call's secret is already current is finished, not in flight: the
	// pass clears its bookkeeping, and everything below is judged on the cleared state.
	wantFinished := f.snap.Pending == nil && !st.RequestedAt.IsZero() && !st.LastCallAt.IsZero() && answered(st, cur)
	if a.finished != wantFinished {
		bad("finished=%v, want %v", a.finished, wantFinished)
	}
	if wantFinished {
		if after := stateAfterPromotion(st, cur); a.save == nil || (!a.watchdog && *a.save != after) {
			bad("a finished rotation saves %+v, want the state after promotion", a.save)
		}
		st = stateAfterPromotion(st, cur)
	}
	inFlight := !st.RequestedAt.IsZero() && now.Before(st.RequestedAt.Add(s.AwaitDeadline))
	expiry := EffectiveExpiry(cur, st)
	planned := zero
	if !expiry.IsZero() {
		planned = expiry.Add(-s.RenewBefore)
	}
	canary := f.app.Canary && !cur.ExpiresAt.IsZero() && !now.Before(cur.ExpiresAt.Add(-spapi.SecretLifetime+s.CanaryEvery))
	due := f.manual || RequestPending(st) || !answered(st, cur) || (!planned.IsZero() && !now.Before(planned)) || canary
	if a.wakeAt.Before(now) {
		bad("wakes in the past (%s)", rel(a.wakeAt))
	}
	if p := f.snap.Pending; p != nil {
		// A staged secret is finished or cleared before anything else, and never answered by a
		// second rotate call (which would shorten its life).
		if a.request || a.watchdog || a.finished || a.save != nil || a.clearRequest {
			bad("acts on the schedule while a pending version waits")
		}
		wantResume := p.Record.ClientID == f.app.ClientID && !notNewer(p.Record, cur)
		if a.resume != wantResume || (a.clearPending != "") == wantResume {
			bad("resume=%v clear=%q, want resume=%v", a.resume, a.clearPending, wantResume)
		}
		if a.clearPending != "" && a.clearPending != p.ID {
			bad("clears version %q, not the pending one", a.clearPending)
		}
		if a.phase != PhasePending {
			bad("phase %s with a pending version", a.phase)
		}
		return out
	}
	if a.resume || a.clearPending != "" {
		bad("touches a pending version that does not exist")
	}
	wantWatchdog := !st.RequestedAt.IsZero() && !inFlight
	if a.watchdog != wantWatchdog {
		bad("watchdog=%v, want %v", a.watchdog, wantWatchdog)
	}
	if a.watchdog {
		w := a.save
		switch {
		case w == nil:
			bad("watchdog without a state to save")
		case w.Attempts != st.Attempts+1:
			bad("watchdog counts attempt %d after %d", w.Attempts, st.Attempts)
		case !w.NextAttemptAt.After(now):
			bad("watchdog plans the next attempt at %s, not after now", rel(w.NextAttemptAt))
		case !w.RequestedAt.IsZero():
			bad("watchdog keeps the rotation in flight")
		case !w.LastCallAt.Equal(st.LastCallAt):
			bad("watchdog forgets the last rotate call")
		}
		if a.phase != PhaseOverdue {
			bad("watchdog in phase %s", a.phase)
		}
	}
	if a.request {
		switch {
		case inFlight:
			bad("requests while a rotate call is in flight within the await deadline")
		case a.watchdog:
			bad("requests in the same pass the watchdog plans a backoff")
		case now.Before(st.NextAttemptAt):
			bad("requests before the next attempt is due (%s)", rel(st.NextAttemptAt))
		case !due:
			bad("requests with nothing due")
		}
		in := a.intent
		if !in.RequestedAt.Equal(now) || !in.LastCallAt.Equal(now) {
			bad("intent does not note the call at now")
		}
		if RequestPending(st) && !in.ServedRequest.Equal(st.Request.At) {
			bad("intent does not mark the operator's request served")
		}
		if in.RotationID != st.RotationID || in.Attempts != st.Attempts {
			bad("intent loses the rotation id or the attempt count")
		}
		if !a.wakeAt.Equal(now.Add(s.AwaitDeadline)) {
			bad("after a request wakes at %s, not at the await deadline", rel(a.wakeAt))
		}
	}
	// Amazon allows one rotate call a minute per application.
	lastCall := st.LastCallAt
	if minted := cur.ExpiresAt.Add(-spapi.SecretLifetime); !cur.ExpiresAt.IsZero() && minted.After(lastCall) {
		lastCall = minted // the call that minted the current secret
	}
	callOK := lastCall.IsZero() || !now.Before(lastCall.Add(time.Minute))
	if a.request && !callOK {
		bad("requests within a minute of the last rotate call (%s)", rel(lastCall))
	}
	// Liveness: whatever is due and allowed is done now.
	if due && !inFlight && !wantWatchdog && !now.Before(st.NextAttemptAt) && callOK && !a.request {
		bad("a due rotation is not requested (phase %s)", a.phase)
	}
	if !a.request && !a.watchdog && !inFlight && a.wakeAt.After(now.Add(idleRecheck)) && !now.Before(st.NextAttemptAt) {
		bad("an idle application is not looked at again within %s (wakes %s)", idleRecheck, rel(a.wakeAt))
	}
	if inFlight && (a.phase != PhaseRequested || !a.wakeAt.Equal(st.RequestedAt.Add(s.AwaitDeadline))) {
		bad("in flight, but phase %s wakes %s instead of at the await deadline", a.phase, rel(a.wakeAt))
	}
	// The daily proof of AWSCURRENT: due when its time has come, never beside a rotate request
	// (whose token call proves the secret anyway), and always planned again within 1.1 intervals.
	if !inFlight {
		probeDue := !f.probeAt.IsZero() && !now.Before(f.probeAt)
		if a.probe != (probeDue && !a.request) {
			bad("probe=%v with the probe due %s and request=%v", a.probe, rel(f.probeAt), a.request)
		}
		if a.nextProbe.Before(now) || a.nextProbe.After(now.Add(s.ProbeEvery*11/10)) {
			bad("next probe at %s, not within 1.1 intervals", rel(a.nextProbe))
		}
		if (a.probe || a.request) && !a.nextProbe.After(now) {
			bad("a probe now plans the next one at %s, not later", rel(a.nextProbe))
		}
		if !a.request && a.wakeAt.After(a.nextProbe) {
			bad("wakes at %s, after the next probe at %s", rel(a.wakeAt), rel(a.nextProbe))
		}
	}
	// Request tags are tidied by the pass that plans the next step, not while a call is in flight.
	servedLeft := RequestServed(st) && (st.RequestedAt.IsZero() || wantWatchdog)
	if !inFlight && a.clearRequest != (servedLeft || st.Request.Invalid) {
		bad("clearRequest=%v, want it exactly for a served or unreadable request", a.clearRequest)
	}
	if inFlight && a.clearRequest {
		bad("removes request tags while a rotate call is in flight")
	}
	if a.clearRequest && a.request && RequestPending(st) {
		bad("removes a request that is still owed its rotation")
	}
	return out
}

// notices yields the notifications judged against each grid point: every kind, for this
// application and for another, with expiries on both sides of the current, previous and pending
// secrets' and event times on both sides of the current secret's mint.
func notices(f facts) []notifications.Notification {
	cur := f.snap.Current.Record
	base := cur.ExpiresAt
	if base.IsZero() {
		base = at(100 * day)
	}
	var out []notifications.Notification
	for _, appID := range []string{gridApp.ApplicationID, "amzn1.sp.solution.other"} {
		env := func(id string, event time.Time) notifications.Envelope {
			return notifications.Envelope{EventTime: event, Metadata: notifications.Metadata{ApplicationID: appID, NotificationID: id}}
		}
		mint := base.Add(-spapi.SecretLifetime)
		expiries := []time.Time{at(-time.Hour), at(day), base.Add(-day), base, base.Add(day)}
		if p := cur.PreviousExpiresAt; !p.IsZero() {
			expiries = append(expiries, p, p.Add(time.Minute))
		}
		if !f.snap.State.NoticedExpiry.IsZero() {
			expiries = append(expiries, f.snap.State.NoticedExpiry)
		}
		for _, e := range expiries {
			for _, event := range []time.Time{mint.Add(-time.Hour), mint.Add(time.Hour)} {
				n := &notifications.ExpiryNotice{Envelope: env("n-exp", event), ClientID: gridApp.ClientID, ExpiresAt: e}
				n.Type = notifications.TypeExpiry
				out = append(out, n)
			}
		}
		newExpiries := []time.Time{base.Add(-day), base, base.Add(day), base.Add(200 * day)}
		if p := f.snap.Pending; p != nil {
			newExpiries = append(newExpiries, p.Record.ExpiresAt, p.Record.ExpiresAt.Add(day))
		}
		for _, e := range newExpiries {
			for _, sec := range []secret.Value{curSecret, secret.New("fresh")} {
				for _, id := range []string{"n-new", "pend"} {
					n := &notifications.NewSecret{Envelope: env(id, at(-time.Minute)), ClientID: gridApp.ClientID, Secret: sec,
						ExpiresAt: e, OldExpiresAt: base}
					n.Type = notifications.TypeNewSecret
					out = append(out, n)
				}
			}
		}
	}
	return out
}

func TestJudgeKeepsTheInvariantsOnEveryCombination(t *testing.T) {
	t.Parallel()
	n := 0
	outcomes := map[notifications.Outcome]int{}
	judgeGrid := func(yield func(gridPoint) bool) { gridOf([]string{"none"}, []time.Time{zero}, yield) }
	for p := range judgeGrid {
		if p.f.snap.State.NextAttemptAt.Equal(at(-time.Minute)) {
			continue // judge reads neither the triggers, the probe nor the backoff's side of now: a part of the grid is enough
		}
		if p.f.snap.Pending != nil {
			// The pending version's id is the token of the notification id "pend", so one of the
			// new-secret messages below is its own redelivery.
			p.f.snap.Pending.ID = vault.TokenFor("pend")
			p.f.snap.Labels = map[string][]string{"v-cur": {vault.StageCurrent}, p.f.snap.Pending.ID: {vault.StagePending}}
		}
		for _, note := range notices(p.f) {
			n++
			v := judge(note, p.f, gridNow)
			outcomes[v.outcome]++
			for _, problem := range judgeProblems(note, p.f, v) {
				t.Errorf("%s, %s: %s", p.name, describe(note), problem)
			}
			if t.Failed() {
				return
			}
		}
	}
	t.Logf("%d judgements; outcomes: %v", n, outcomes)
	for _, o := range []notifications.Outcome{notifications.OutcomeProcessed, notifications.OutcomeDuplicate, notifications.OutcomeStale,
		notifications.OutcomeRejected, notifications.OutcomeFailed} {
		if outcomes[o] == 0 {
			t.Errorf("no combination reached outcome %s", o)
		}
	}
}

func describe(n notifications.Notification) string {
	switch v := n.(type) {
	case *notifications.ExpiryNotice:
		return fmt.Sprintf("expiry notice app=%s expires=%s event=%s", v.Metadata.ApplicationID, rel(v.ExpiresAt), rel(v.EventTime))
	case *notifications.NewSecret:
		return fmt.Sprintf("new secret app=%s id=%s expires=%s sameAsCurrent=%v", v.Metadata.ApplicationID, v.Metadata.NotificationID,
			rel(v.ExpiresAt), v.Secret.Equal(curSecret))
	}
	return "?"
}

// judgeProblems lists the invariants a verdict breaks.
func judgeProblems(n notifications.Notification, f facts, v verdict) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	cur, st := f.snap.Current.Record, f.snap.State
	writes := v.stage || v.promote || v.save != nil || v.clearPending != "" || v.settleFirst
	if n.Meta().Metadata.ApplicationID != f.app.ApplicationID {
		if v.outcome != notifications.OutcomeRejected || writes {
			bad("a notification for another application is %s (writes %v), want rejected with no write", v.outcome, writes)
		}
		return out
	}
	if v.outcome.Verdict() != notifications.Done && v.outcome != notifications.OutcomeFailed && writes {
		bad("a refused notification writes")
	}
	switch m := n.(type) {
	case *notifications.ExpiryNotice:
		if v.stage || v.promote || v.clearPending != "" || v.settleFirst {
			bad("an expiry notice touches secret versions")
		}
		stale := aboutReplacedSecret(m, cur, gridNow)
		switch {
		case stale && (v.outcome != notifications.OutcomeStale || v.save != nil):
			bad("a notice about a replaced secret is %s (save %v)", v.outcome, v.save != nil)
		case !stale && v.outcome != notifications.OutcomeProcessed:
			bad("a notice about the current secret is %s", v.outcome)
		case !stale && st.NoticedExpiry.Equal(m.ExpiresAt) && v.save != nil:
			bad("a known notice is saved again")
		case !stale && st.NoticedExpiry.IsZero() && m.ExpiresAt.Equal(cur.ExpiresAt):
			// The stored record already says it: recording it would change no plan.
			if v.save != nil || v.wake {
				bad("a notice of the stored expiry is saved (save %v, wake %v)", v.save != nil, v.wake)
			}
		case !stale && !st.NoticedExpiry.Equal(m.ExpiresAt):
			want := st
			want.NoticedExpiry = m.ExpiresAt
			if v.save == nil || *v.save != want || !v.wake {
				bad("a new notice is not recorded as the noticed expiry (alone) and planned")
			}
		}
		if m.ExpiresAt.Before(gridNow) && !stale {
			bad("a notice whose expiry passed is taken as about the current secret")
		}
	case *notifications.NewSecret:
		older := !cur.ExpiresAt.IsZero() && !m.ExpiresAt.After(cur.ExpiresAt)
		if v.stage && older {
			bad("stages a secret that is not newer than the current one: going backwards")
		}
		if v.promote && !v.stage {
			bad("promotes without staging first")
		}
		if v.outcome == notifications.OutcomeProcessed && !(v.stage && v.promote) {
			bad("processed (deleted) without staging and promoting: the secret would be lost")
		}
		if v.outcome == notifications.OutcomeDuplicate && !cur.ClientSecret.Equal(m.Secret) {
			bad("a duplicate that is not the current secret")
		}
		if v.outcome == notifications.OutcomeDuplicate && v.save != nil && *v.save != stateAfterPromotion(st, cur) {
			bad("a duplicate saves something other than the bookkeeping after promotion")
		}
		if v.outcome == notifications.OutcomeStale && (!older || cur.ClientSecret.Equal(m.Secret) || v.save != nil) {
			bad("stale without being older than, and different from, the current secret")
		}
		token := vault.TokenFor(m.Metadata.NotificationID)
		if v.clearPending != "" && v.clearPending != token {
			bad("a stale message clears a pending version (%s) not its own", v.clearPending)
		}
		p := f.snap.Pending
		newerPending := p != nil && p.ID != token && p.Record.ExpiresAt.After(m.ExpiresAt)
		if v.settleFirst != (newerPending && !older) {
			bad("settleFirst=%v, want it exactly when a newer, unverified secret is pending", v.settleFirst)
		}
		if v.settleFirst && v.outcome.Verdict() == notifications.Done {
			bad("deleted while a newer pending secret still waits to be settled")
		}
		if v.stage && v.token != token {
			bad("stages under token %s, not the notification's", v.token)
		}
		if v.stage && !(v.record.ClientSecret.Equal(m.Secret) && v.record.ExpiresAt.Equal(m.ExpiresAt) && v.record.PreviousExpiresAt.Equal(m.OldExpiresAt)) {
			bad("stages a record that is not the message's")
		}
		if !older && !newerPending && !(v.stage && v.promote) {
			bad("a newer secret is not staged and promoted (outcome %s)", v.outcome)
		}
	}
	return out
}

// TestReplicaWordsHoldEveryCallOnEveryCombination: over the whole grid, another replica's live
// word (a claim on the due rotation, a new secret in hand) leaves no rotate call and no watchdog
// standing, this process's own usable claim leaves the call as it was, and a claim that lapsed
// before the read changes nothing.
func TestReplicaWordsHoldEveryCallOnEveryCombination(t *testing.T) {
	t.Parallel()
	const me, other = "pod-a/1", "pod-b/2"
	n := 0
	for p := range grid {
		n++
		p.f.holder = me
		p.f.snap.ReadAt = gridNow
		base := plan(p.f, gridSettings, gridNow, 0)
		variants := []struct {
			name string
			edit func(*facts)
			want func(a action) string
		}{
			{"another replica's live claim", func(f *facts) {
				f.snap.Claim = &vault.Claim{Holder: other, ClaimedAt: gridNow.Add(-time.Minute), Until: gridNow.Add(time.Minute)}
			}, func(a action) string {
				if a.request {
					return "a rotate call despite another replica's live claim"
				}
				if base.request && (a.reason != ReasonClaimed || !a.actAt.Equal(gridNow.Add(time.Minute))) {
					return fmt.Sprintf("reason %q next %s, want %q at the claim's lapse", a.reason, a.actAt, ReasonClaimed)
				}
				return ""
			}},
			{"this process's usable claim", func(f *facts) {
				f.snap.Claim = &vault.Claim{Holder: me, RotationID: "r-own", ClaimedAt: gridNow.Add(-time.Second), Until: gridNow.Add(4 * time.Minute)}
			}, func(a action) string {
				if a.request != base.request || (a.request && (a.claim == nil || a.intent.RotationID != "r-own")) {
					return fmt.Sprintf("request %v claim %v rotation %q, want the base plan's call (%v) under the own claim", a.request, a.claim, a.intent.RotationID, base.request)
				}
				return ""
			}},
			{"a claim that lapsed before the read", func(f *facts) {
				f.snap.Claim = &vault.Claim{Holder: other, ClaimedAt: gridNow.Add(-5 * time.Minute), Until: gridNow}
			}, func(a action) string {
				if a.request != base.request || a.phase != base.phase || a.reason != base.reason {
					return fmt.Sprintf("%s/%s request %v, want the base plan's %s/%s request %v", a.phase, a.reason, a.request, base.phase, base.reason, base.request)
				}
				return ""
			}},
			{"another replica's secret in hand", func(f *facts) {
				f.snap.State.InHand = vault.Lease{Until: gridNow.Add(10 * time.Minute), By: other}
			}, func(a action) string {
				switch {
				case p.f.snap.Pending != nil || base.finished:
					if a.phase != base.phase || a.request != base.request {
						return fmt.Sprintf("%s request %v, want the base plan's %s request %v", a.phase, a.request, base.phase, base.request)
					}
				case a.request || a.watchdog:
					return "a rotate call or the watchdog while a replica holds the new secret"
				case (base.request || base.watchdog) && a.reason != ReasonSecretInHand:
					return fmt.Sprintf("reason %q, want %q", a.reason, ReasonSecretInHand)
				}
				return ""
			}},
		}
		for _, v := range variants {
			f := p.f
			v.edit(&f)
			if problem := v.want(plan(f, gridSettings, gridNow, 0)); problem != "" {
				t.Errorf("%s, %s: %s", p.name, v.name, problem)
			}
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d combinations, 4 replica words each", n)
}
