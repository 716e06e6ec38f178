package rotator

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

func TestWhenRotationIsDue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		expiry     time.Time // stored expiry of the current secret
		notice     time.Time // expiry from a recorded notice
		manual     bool
		wantRotate bool
		wantNext   time.Time
	}{
		{"far from expiry: looks again within the hour", t0.Add(100 * day), time.Time{}, false, false, t0.Add(idleRecheck)},
		{"planned within the hour: wakes at the planned time", t0.Add(30*day + 10*time.Minute), time.Time{}, false, false, t0.Add(10 * time.Minute)},
		{"inside the window", t0.Add(20 * day), time.Time{}, false, true, time.Time{}},
		{"exactly at the planned time", t0.Add(30 * day), time.Time{}, false, true, time.Time{}},
		{"notice says earlier than stored", t0.Add(100 * day), t0.Add(10 * day), false, true, time.Time{}},
		{"no expiry known: waits for a notice", time.Time{}, time.Time{}, false, false, t0.Add(idleRecheck)},
		{"no expiry known but a notice inside the window", time.Time{}, t0.Add(5 * day), false, true, time.Time{}},
		{"manual trigger far from expiry", t0.Add(150 * day), time.Time{}, true, true, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, setup{expiry: tc.expiry, state: vault.RotationState{NoticedExpiry: tc.notice}})
			if tc.manual && !h.r.Trigger("app") {
				t.Fatal("Trigger matched no application")
			}
			next := h.r.Tick(context.Background())
			if got := h.amzn.calls() == 1; got != tc.wantRotate {
				t.Fatalf("rotated = %v, want %v", got, tc.wantRotate)
			}
			if tc.wantRotate {
				if st := h.world().state; !st.RequestedAt.Equal(t0) || !st.LastCallAt.Equal(t0) || st.RotationID == "" {
					t.Errorf("saved intent = %+v, want requested and called at %v with a rotation id", st, t0)
				}
				if !next.Equal(t0.Add(time.Hour)) {
					t.Errorf("next wake-up = %v, want the await deadline %v", next, t0.Add(time.Hour))
				}
				// The call was made: the status says what the daemon now waits for, and when it
				// will act if no secret comes (the watchdog's retry, after the await deadline).
				if s := h.status(); s.Phase != PhaseRequested || !s.InFlightSince.Equal(t0) || !s.NextRotation.After(t0.Add(time.Hour)) {
					t.Errorf("status = %+v, want requested, in flight since %v, next rotation after the await deadline", s, t0)
				}
				return
			}
			if !next.Equal(tc.wantNext) {
				t.Errorf("next wake-up = %v, want %v", next, tc.wantNext)
			}
			if w := h.world(); w.daemonTags != 0 {
				t.Errorf("a pass that decided nothing wrote state: %+v", w.state)
			}
		})
	}
}

func TestNewSecretIsVerifiedThenPromoted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*day))
	h.r.Tick(context.Background())
	newSecret, msg := h.delivered()
	notice, _ := h.amzn.lastNotice()
	token := vault.TokenFor(notice.NotificationID)
	tokensBefore, _ := h.amzn.counts()
	var atVerify world
	h.amzn.onToken = func() { atVerify = h.world() }
	if res := h.handle(msg); !res.Delete {
		t.Fatalf("result = %+v, want Delete", res)
	}
	// Verified while still only AWSPENDING: LWA accepted it before AWSCURRENT moved.
	if !atVerify.cur.Record.ClientSecret.Equal(h.old) || !atVerify.pending || vault.PendingVersion(atVerify.allVersions) != token {
		t.Errorf("at verification: versions %v, want the new secret pending under %s and the old one current", atVerify.allVersions, token)
	}
	w := h.world()
	if !w.cur.Record.ClientSecret.Equal(newSecret) || w.cur.ID != token {
		t.Errorf("AWSCURRENT is not the new secret under the notification's token (id %s)", w.cur.ID)
	}
	if !w.prev.Record.ClientSecret.Equal(h.old) {
		t.Errorf("AWSPREVIOUS does not hold the old secret")
	}
	if !w.cur.Record.PreviousExpiresAt.Equal(t0.Add(7*day)) || !w.cur.Record.ExpiresAt.Equal(t0.Add(spapi.SecretLifetime)) {
		t.Errorf("expiries = %v / previous %v", w.cur.Record.ExpiresAt, w.cur.Record.PreviousExpiresAt)
	}
	if w.pending {
		t.Errorf("AWSPENDING left on a version that is not current: %v", w.allVersions)
	}
	if w.daemonTags != 0 {
		t.Errorf("rotation state not cleared: %+v", w.state)
	}
	if tokens, _ := h.amzn.counts(); tokens != tokensBefore+1 {
		t.Errorf("LWA token calls for the message = %d, want 1 (the verification)", tokens-tokensBefore)
	}
	if h.obs.rotations(ResultSuccess) != 1 || h.obs.outcomes(notifications.OutcomeProcessed) != 1 {
		t.Errorf("counters: %+v %+v", h.obs.rot, h.obs.notes)
	}
	s := h.status()
	if !s.LastSuccess.Equal(t0) || !s.CurrentExpiry.Equal(t0.Add(spapi.SecretLifetime)) || !s.InFlightSince.IsZero() || s.Phase != PhaseIdle {
		t.Errorf("status after success: %+v", s)
	}
}

func TestRejectedSecretChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*day))
	before := h.world()
	res := h.handle(h.planted("p1", t0.Add(180*day)))
	if res.Delete || res.RetryAfter != rejectedRetry {
		t.Fatalf("result = %+v, want the message left for the dead-letter queue", res)
	}
	w := h.world()
	if w.cur.ID != before.cur.ID || !w.cur.Record.ClientSecret.Equal(h.old) || w.pending {
		t.Fatalf("the vault changed for a rejected secret: %v", w.allVersions)
	}
	if h.obs.rotations(ResultRejected) != 1 || h.obs.outcomes(notifications.OutcomeRejected) != 1 {
		t.Fatalf("rejection not counted: %+v %+v", h.obs.rot, h.obs.notes)
	}
}

func TestOlderAndDuplicateSecretsNeverGoBackwards(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*day))
	_, olderMsg := h.mint("older", t0.Add(180*day), t0.Add(7*day))
	newer, newerMsg := h.mint("newer", t0.Add(181*day), t0.Add(7*day))
	steps := []struct {
		name    string
		msg     notifications.Message
		outcome notifications.Outcome
	}{
		{"newer first", newerMsg, notifications.OutcomeProcessed},
		{"older after newer (reordered)", olderMsg, notifications.OutcomeStale},
		{"newer again (duplicate)", newerMsg, notifications.OutcomeDuplicate},
	}
	for _, s := range steps { // sequential: each step builds on the last
		if res := h.handle(s.msg); !res.Delete {
			t.Fatalf("%s: result %+v, want Delete", s.name, res)
		}
		if n := h.obs.outcomes(s.outcome); n != 1 {
			t.Fatalf("%s: %s counted %d times", s.name, s.outcome, n)
		}
		if w := h.world(); !w.cur.Record.ClientSecret.Equal(newer) || w.pending {
			t.Fatalf("%s: AWSCURRENT is not the newest secret, or AWSPENDING left: %v", s.name, w.allVersions)
		}
	}
}

// The sender allow-list lives in the Dispatcher; the rest are the rotator's refusals. Each stays
// on the queue, delayed, and changes nothing.
func TestMessagesTheDaemonMustNotAcceptStayForTheDLQ(t *testing.T) {
	t.Parallel()
	exp := t0.Add(100 * day)
	tests := []struct {
		name    string
		msg     func(h *harness) notifications.Message
		outcome notifications.Outcome
	}{
		{"malformed", func(*harness) notifications.Message { return message("x", []byte(`{"notificationType":`)) }, notifications.OutcomeMalformed},
		{"unknown type", func(*harness) notifications.Message {
			return message("x", []byte(`{"notificationVersion":"1.0","notificationType":"ANY_OFFER_CHANGED"}`))
		}, notifications.OutcomeMalformed},
		{"unknown client", func(h *harness) notifications.Message {
			return h.expiry("u1", "amzn1.application-oa2-client.other", appID, exp)
		}, notifications.OutcomeUnknownClient},
		{"another application id", func(h *harness) notifications.Message {
			return h.expiry("u2", clientID, "amzn1.sp.solution.other", exp)
		}, notifications.OutcomeRejected},
		{"a sender not allowed", func(h *harness) notifications.Message {
			m := h.expiry("u3", clientID, appID, t0.Add(40*day))
			m.SenderID = "AIDASTRANGER"
			return m
		}, notifications.OutcomeRejected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, t0.Add(100*day))
			h.d = h.dispatcher([]string{amazonSender})
			res := h.handle(tc.msg(h))
			if res.Delete || res.RetryAfter != rejectedRetry {
				t.Fatalf("result = %+v: must stay on the queue, delayed %s", res, rejectedRetry)
			}
			if h.obs.outcomes(tc.outcome) != 1 {
				t.Fatalf("outcome %s not counted: %+v", tc.outcome, h.obs.notes)
			}
			if c := h.sm.Calls(); c["TagResource"]+c["PutSecretValue"]+c["UpdateSecretVersionStage"]+c["UntagResource"] != 0 {
				t.Fatalf("a refused message wrote to the vault: %v", c)
			}
		})
	}
}

func TestExpiryNoticeIsRecordedAndSchedulesRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, time.Time{}) // an operator-seeded secret without expiry
	ctx := context.Background()
	notice := t0.Add(45 * day)
	if res := h.handle(h.expiry("e1", clientID, appID, notice)); !res.Delete {
		t.Fatalf("result = %+v, want Delete once recorded", res)
	}
	if st := h.world().state; !st.NoticedExpiry.Equal(notice) {
		t.Fatalf("noticed expiry = %v, want %v", st.NoticedExpiry, notice)
	}
	h.r.Tick(ctx)
	planned := notice.Add(-testSettings.RenewBefore)
	if s := h.status(); !s.NextRotation.Equal(planned) || !s.CurrentExpiry.Equal(notice) || h.amzn.calls() != 0 {
		t.Fatalf("status %+v, calls %d: want planned at %v and no call yet", s, h.amzn.calls(), planned)
	}
	h.clk.Set(planned)
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("no rotation at the planned time")
	}
}

func TestExpiryNoticeAboutWhichSecret(t *testing.T) {
	t.Parallel()
	prevExpiry := t0.Add(3 * day)
	tests := []struct {
		name      string
		stored    time.Time
		notice    time.Time
		outcome   notifications.Outcome
		rotateNow bool
		// known: the stored record already holds the expiry, so nothing is recorded.
		known bool
	}{
		{"about the previous secret", t0.Add(170 * day), prevExpiry.Add(time.Millisecond), notifications.OutcomeStale, false, false},
		{"about an older secret", t0.Add(170 * day), prevExpiry.Add(-2 * day), notifications.OutcomeStale, false, false},
		{"already past", t0.Add(170 * day), t0.Add(-day), notifications.OutcomeStale, false, false},
		// A rotate call whose secret never reached us shortened the current secret's life:
		// Amazon's notice is the only word of it, and must be acted on.
		{"current secret shortened", t0.Add(170 * day), t0.Add(6 * day), notifications.OutcomeProcessed, true, false},
		{"the current secret's own expiry", t0.Add(170 * day), t0.Add(170 * day), notifications.OutcomeProcessed, false, true},
		// Sent (at t0) before the current secret was minted (stored expiry 185 days out): about an
		// older secret, even though its expiry is later than the previous secret's.
		{"sent before the current secret existed", t0.Add(185 * day), t0.Add(20 * day), notifications.OutcomeStale, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, setup{expiry: tc.stored, prevExpiry: prevExpiry})
			res := h.handle(h.expiry("e0", clientID, appID, tc.notice))
			if !res.Delete || h.obs.outcomes(tc.outcome) != 1 {
				t.Fatalf("result %+v, counters %+v: want %s and deleted", res, h.obs.notes, tc.outcome)
			}
			st := h.world().state
			if recorded := st.NoticedExpiry.Equal(tc.notice); recorded != (tc.outcome == notifications.OutcomeProcessed && !tc.known) {
				t.Fatalf("notice recorded = %v (%v) for outcome %s", recorded, st.NoticedExpiry, tc.outcome)
			}
			h.r.Tick(context.Background())
			if rotated := h.amzn.calls() == 1; rotated != tc.rotateNow {
				t.Fatalf("rotated = %v, want %v", rotated, tc.rotateNow)
			}
		})
	}
}

func TestPendingSecretBlocksASecondRotateCall(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*day))
	ctx := context.Background()
	h.r.Tick(ctx) // rotation requested
	newSecret, msg := h.delivered()
	h.amzn.fail(&spapi.Error{API: "lwa", Op: "token", StatusCode: http.StatusTooManyRequests, RetryAfter: time.Minute, Kind: spapi.ErrThrottled}, nil, false)
	// The secret is durable as AWSPENDING, so the plaintext message leaves SQS; the vault
	// carries the rest.
	if res := h.handle(msg); !res.Delete || h.obs.outcomes(notifications.OutcomeStaged) != 1 {
		t.Fatalf("a staged but unverified secret's message: %+v, counters %+v; want deleted as staged", res, h.obs.notes)
	}
	if !h.world().pending {
		t.Fatal("the unverified secret is not kept as AWSPENDING")
	}
	// LWA stays throttled past the await deadline: the secret has arrived, so no second rotate.
	h.clk.Advance(2 * time.Hour)
	next := h.r.Tick(ctx)
	if h.amzn.calls() != 1 || h.obs.rotations(ResultTimeout) != 0 {
		t.Fatalf("rotate called %d times (timeouts %d) while the new secret was pending, want 1 and none",
			h.amzn.calls(), h.obs.rotations(ResultTimeout))
	}
	if s := h.status(); s.Phase != PhasePending {
		t.Fatalf("phase = %v, want pending", s.Phase)
	}
	if s := h.status(); s.PendingSince.IsZero() {
		t.Fatal("the status does not say since when a secret waits to be promoted")
	}
	h.amzn.fail(nil, nil, false)
	h.clk.Set(next)
	h.r.Tick(ctx)
	if w := h.world(); !w.cur.Record.ClientSecret.Equal(newSecret) || w.pending {
		t.Fatal("the pending secret was not promoted once LWA answered")
	}
	if h.amzn.calls() != 1 {
		t.Fatalf("rotate calls = %d after the promotion, want 1", h.amzn.calls())
	}
	if s := h.status(); !s.PendingSince.IsZero() || h.obs.rotations(ResultSuccess) != 1 {
		t.Fatalf("after the promotion: pending since %v, %d successes", s.PendingSince, h.obs.rotations(ResultSuccess))
	}
}

func TestDelayedOlderSecretKeepsTheLaterRequestInFlight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		st   vault.RotationState
	}{
		{"the later call is awaited", vault.RotationState{RequestedAt: t0, LastCallAt: t0, RotationID: "r2", Attempts: 1}},
		// The watchdog already gave up on the later call: the call's time is still known.
		{"the watchdog already fired", vault.RotationState{LastCallAt: t0, RotationID: "r2", Attempts: 2, NextAttemptAt: t0.Add(day)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, setup{expiry: t0.Add(20 * day), state: tc.st})
			ctx := context.Background()
			// A secret minted a minute before the latest call arrives late.
			late, msg := h.mint("late", t0.Add(180*day-time.Minute), t0.Add(7*day))
			if res := h.handle(msg); !res.Delete {
				t.Fatalf("result %+v", res)
			}
			w := h.world()
			if !w.cur.Record.ClientSecret.Equal(late) {
				t.Fatal("the late secret, newer than the stored one, was not promoted")
			}
			if !w.state.RequestedAt.Equal(t0) || w.state.RotationID != "r2" {
				t.Fatalf("the later call was forgotten: %+v", w.state)
			}
			// Its secret never comes: the watchdog fires and asks again.
			h.clk.Set(t0.Add(2 * day))
			h.r.Tick(ctx)
			if h.obs.rotations(ResultTimeout) != 1 {
				t.Fatal("no watchdog for the call still owed")
			}
			// ...and asks again after the backoff, although the stored expiry looks far away.
			h.clk.Set(h.world().state.NextAttemptAt)
			h.r.Tick(ctx)
			if h.amzn.calls() != 1 {
				t.Fatalf("rotate calls = %d after the backoff, want 1", h.amzn.calls())
			}
		})
	}
}

func TestSecretOfTheLatestCallClearsTheState(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, setup{expiry: t0.Add(20 * day),
		state: vault.RotationState{RequestedAt: t0, LastCallAt: t0, RotationID: "r1", Attempts: 3}})
	// Minted 300 ms after the call was about to be made, as Amazon does.
	_, msg := h.mint("answer", t0.Add(180*day+300*time.Millisecond), t0.Add(7*day))
	if res := h.handle(msg); !res.Delete {
		t.Fatalf("result %+v", res)
	}
	if w := h.world(); w.daemonTags != 0 {
		t.Fatalf("state not cleared: %+v", w.state)
	}
}

func TestWatchdogRetriesWhenTheNewSecretNeverArrives(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*day))
	ctx := context.Background()
	h.r.Tick(ctx)
	h.clk.Advance(59 * time.Minute)
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("rotated again before the await deadline")
	}
	h.clk.Advance(time.Minute)
	next := h.r.Tick(ctx)
	if h.obs.rotations(ResultTimeout) != 1 {
		t.Fatalf("deadline not reported: %+v", h.obs.rot)
	}
	st := h.world().state
	if st.Attempts != 1 || !st.RequestedAt.IsZero() || !st.NextAttemptAt.After(h.clk.Now()) {
		t.Fatalf("state after the deadline: %+v", st)
	}
	if !next.Equal(st.NextAttemptAt) {
		t.Fatalf("next = %v, want the backoff time %v", next, st.NextAttemptAt)
	}
	if s := h.status(); s.Phase != PhaseOverdue || !s.InFlightSince.IsZero() {
		t.Fatalf("status after the deadline: %+v", s)
	}
	// A restart in between loses nothing: the backoff lives in the vault.
	h.restart()
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("a restart ignored the stored backoff")
	}
	if s := h.status(); s.Phase != PhaseBackingOff || !s.NextRotation.Equal(st.NextAttemptAt) {
		t.Fatalf("status after the restart: %+v", s)
	}
	h.clk.Set(st.NextAttemptAt)
	h.r.Tick(ctx)
	if h.amzn.calls() != 2 {
		t.Fatalf("no retry after the backoff (calls %d)", h.amzn.calls())
	}
}

func TestRestartAfterTheRotateCallDoesNotRotateTwice(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*day))
	ctx := context.Background()
	h.r.Tick(ctx)
	h.restart() // the process died after the rotate call
	h.clk.Advance(10 * time.Minute)
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("rotate called %d times across a restart, want 1", h.amzn.calls())
	}
	if s := h.status(); !s.InFlightSince.Equal(t0) || s.Phase != PhaseRequested {
		t.Fatalf("the restarted daemon does not show the rotation in flight: %+v", s)
	}
}

func TestInterruptedPromotionIsResumed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*day))
	ctx := context.Background()
	newSecret, _ := h.mint("n2", t0.Add(180*day), t0.Add(7*day))
	// The process died after staging: AWSPENDING holds a verifiable secret, the message is gone.
	snap, err := h.store.Read(ctx, secretID)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.StageOn(ctx, snap, vault.TokenFor("n2"), vault.Record{ClientID: clientID, ClientSecret: newSecret,
		ExpiresAt: t0.Add(180 * day), PreviousExpiresAt: t0.Add(7 * day)}); err != nil {
		t.Fatal(err)
	}
	h.restart()
	h.r.Tick(ctx)
	w := h.world()
	if !w.cur.Record.ClientSecret.Equal(newSecret) || w.cur.ID != vault.TokenFor("n2") || !w.prev.Record.ClientSecret.Equal(h.old) || w.pending {
		t.Fatalf("the pending secret was not resumed to AWSCURRENT: %v", w.allVersions)
	}
	if _, rotates := h.amzn.counts(); rotates != 0 {
		t.Fatalf("rotated although a newer secret was already pending")
	}
	if h.obs.rotations(ResultSuccess) != 1 {
		t.Fatalf("the resumed promotion was not counted: %+v", h.obs.rot)
	}
}

func TestRequestFailuresBackOffAndAreClassified(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		tokenErr        error
		rotateErr       error
		unknownToAmazon bool // LWA itself refuses the stored secret
		result          Result
		minWait         time.Duration
	}{
		{"throttled honours Retry-After", nil, &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusTooManyRequests,
			Code: "QuotaExceeded", RetryAfter: 2 * time.Hour, Kind: spapi.ErrThrottled}, false, ResultRequestFailed, 2 * time.Hour},
		{"not enrolled", nil, &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusBadRequest, Code: "InvalidInput",
			Message: "Application is not enrolled for rotation notification", Kind: spapi.ErrNotEnrolled}, false, ResultNotEnrolled, 30 * time.Second},
		{"current secret rejected", nil, nil, true, ResultCurrentInvalid, 30 * time.Second},
		{"LWA server error", &spapi.Error{API: "lwa", Op: "token", StatusCode: http.StatusServiceUnavailable, Kind: spapi.ErrTransient},
			nil, false, ResultRequestFailed, 30 * time.Second},
		{"network", &spapi.Error{API: "lwa", Op: "token", Kind: spapi.ErrTransient, Err: errors.New("connection reset by peer")},
			nil, false, ResultRequestFailed, 30 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, setup{expiry: t0.Add(20 * day), unknownToAmazon: tc.unknownToAmazon})
			h.amzn.fail(tc.tokenErr, tc.rotateErr, false)
			next := h.r.Tick(context.Background())
			if h.obs.rotations(tc.result) != 1 {
				t.Fatalf("result %s not counted: %+v", tc.result, h.obs.rot)
			}
			st := h.world().state
			if st.Attempts != 1 || !st.RequestedAt.IsZero() || st.NextAttemptAt.Sub(t0) < tc.minWait {
				t.Fatalf("state %+v: want one attempt, nothing in flight, next attempt at least %s away", st, tc.minWait)
			}
			if s := h.status(); !s.InFlightSince.IsZero() || !s.NextRotation.Equal(st.NextAttemptAt) {
				t.Fatalf("status %+v: want nothing in flight and the next attempt shown", s)
			}
			_, rotates := h.amzn.counts()
			for next.Before(st.NextAttemptAt) { // waking early must not retry early
				h.clk.Set(next)
				next = h.r.Tick(context.Background())
				if _, n := h.amzn.counts(); n != rotates {
					t.Fatalf("retried at %v, before the next attempt %v", h.clk.Now(), st.NextAttemptAt)
				}
			}
			if !next.Equal(st.NextAttemptAt) {
				t.Fatalf("next pass at %v, want the next attempt %v", next, st.NextAttemptAt)
			}
		})
	}
}

func TestVaultOutageIsRetriedAndShownInStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*day))
	h.failVault("DescribeSecret", 1)
	next := h.r.Tick(context.Background())
	if s := h.status(); s.ConsecutiveFailures != 1 || s.LastError == "" || s.Known {
		t.Fatalf("status after a vault failure: %+v", s)
	}
	if d := next.Sub(t0); d < vaultRetryMin/2 || d > vaultRetryMax {
		t.Fatalf("retry in %s, want within [%s, %s]", d, vaultRetryMin/2, vaultRetryMax)
	}
	if h.amzn.calls() != 0 {
		t.Fatal("rotated without reading the vault")
	}
	h.clk.Set(next)
	h.r.Tick(context.Background())
	if s := h.status(); s.ConsecutiveFailures != 0 || s.LastError != "" || h.amzn.calls() != 1 {
		t.Fatalf("did not recover: %+v, calls %d", s, h.amzn.calls())
	}
}

// A secret full of other tags cannot hold the intent tags, so no rotate call is made; the
// scheduler says so in the status and looks again in an hour, not every few seconds.
func TestNoTagRoomIsReportedNotRetriedInALoop(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, setup{expiry: t0.Add(20 * day), otherTags: 49}) // inside renewBefore: due
	next := h.r.Tick(context.Background())
	if d := next.Sub(t0); d != idleRecheck {
		t.Fatalf("next look in %s, want %s", d, idleRecheck)
	}
	if tokens, rotates := h.amzn.counts(); tokens+rotates != 0 {
		t.Fatalf("called Amazon (%d tokens, %d rotates) without the intent saved", tokens, rotates)
	}
	if s := h.status(); !strings.Contains(s.LastError, "no room for the daemon's tags") {
		t.Fatalf("status does not say why: %+v", s)
	}
	if w := h.world(); w.daemonTags != 0 {
		t.Fatalf("state written although it did not fit: %+v", w.state)
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(100*day))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.r.Run(ctx) }()
	if err := h.clk.WaitCreated(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	// A manual trigger wakes the loop without any time passing.
	h.r.Trigger("")
	if err := h.clk.WaitCreated(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if h.amzn.calls() != 1 {
		t.Fatalf("trigger did not rotate (calls %d)", h.amzn.calls())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop when its context ended")
	}
}

func TestOnlyAllowedSendersAreAccepted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*day))
	h.d = h.dispatcher([]string{amazonSender})
	newSecret, msg := h.mint("s1", t0.Add(180*day), t0.Add(7*day))
	msg.SenderID = "AIDASTRANGER"
	if res := h.handle(msg); res.Delete {
		t.Fatal("a message from a stranger was accepted")
	}
	if h.sm.Count("DescribeSecret") != 0 {
		t.Fatal("a stranger's message reached the rotator")
	}
	if w := h.world(); w.cur.Record.ClientSecret.Equal(newSecret) || w.pending {
		t.Fatal("a stranger's secret reached the vault")
	}
	msg.SenderID = amazonSender
	if res := h.handle(msg); !res.Delete {
		t.Fatalf("the allowed sender's message was refused: %+v", res)
	}
	if w := h.world(); !w.cur.Record.ClientSecret.Equal(newSecret) {
		t.Fatal("the allowed sender's secret was not promoted")
	}
}

// Two replicas: while this one verified an older secret, the other promoted a newer one. The
// compare-and-set refuses the older promotion, and the retry acknowledges it as stale.
func TestPromotionLosesTheRaceToANewerSecret(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*day))
	ctx := context.Background()
	_, olderMsg := h.mint("older", t0.Add(180*day), t0.Add(7*day))
	newer, _ := h.mint("newer", t0.Add(181*day), t0.Add(7*day))
	other := &vault.Store{SM: h.sm} // the other replica's store over the same Secrets Manager
	var raceErr error
	h.amzn.onToken = func() { // the other replica acts between our verification and our promotion
		snap, err := other.Read(ctx, secretID)
		if raceErr = err; err == nil {
			if raceErr = other.StageOn(ctx, snap, vault.TokenFor("newer"), vault.Record{ClientID: clientID, ClientSecret: newer,
				ExpiresAt: t0.Add(181 * day), PreviousExpiresAt: t0.Add(7 * day)}); raceErr == nil {
				raceErr = other.PromoteOn(ctx, snap, vault.TokenFor("newer"))
			}
		}
	}
	// Staged but not promoted: the message leaves as staged, and the vault decides the rest.
	if res := h.handle(olderMsg); !res.Delete || h.obs.outcomes(notifications.OutcomeStaged) != 1 {
		t.Fatalf("the message whose promotion lost the race: %+v, counters %+v; want deleted as staged", res, h.obs.notes)
	}
	if raceErr != nil {
		t.Fatalf("the other replica's promotion: %v", raceErr)
	}
	if w := h.world(); !w.cur.Record.ClientSecret.Equal(newer) {
		t.Fatal("AWSCURRENT went backwards to the older secret")
	}
	if h.obs.rotations(ResultSuccess) != 0 {
		t.Fatal("a lost promotion was counted as a success")
	}
	// The next pass finds the older secret pending and not newer than AWSCURRENT: it clears it.
	h.r.Tick(ctx)
	if w := h.world(); !w.cur.Record.ClientSecret.Equal(newer) || w.pending {
		t.Fatalf("after the pass: %v", w.allVersions)
	}
	// A redelivery of the older message is stale.
	if res := h.handle(olderMsg); !res.Delete || h.obs.outcomes(notifications.OutcomeStale) != 1 {
		t.Fatalf("redelivery: %+v, counters %+v; want it acknowledged as stale", res, h.obs.notes)
	}
}

// Only a call that may have minted a secret moves last-call-at: a refusal (4xx) leaves it, so the
// secret of the earlier accepted call still counts as the answer.
func TestOnlyCallsThatMayHaveMintedMoveLastCall(t *testing.T) {
	t.Parallel()
	earlier := t0.Add(-5 * time.Minute)
	tests := []struct {
		name      string
		tokenErr  error
		rotateErr error
		applied   bool // Amazon minted before the answer was lost
		want      time.Time
	}{
		{"throttled", nil, &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusTooManyRequests, Kind: spapi.ErrThrottled}, false, earlier},
		{"no token, no call", &spapi.Error{API: "lwa", Op: "token", StatusCode: http.StatusInternalServerError, Kind: spapi.ErrTransient}, nil, false, earlier},
		{"server error: may have minted", nil, &spapi.Error{API: "spapi", Op: "rotateClientSecret", StatusCode: http.StatusServiceUnavailable,
			Kind: spapi.ErrTransient}, true, t0},
		{"accepted", nil, nil, false, t0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessWith(t, setup{expiry: t0.Add(20 * day), state: vault.RotationState{LastCallAt: earlier, Attempts: 1}})
			h.amzn.fail(tc.tokenErr, tc.rotateErr, tc.applied)
			h.r.Tick(context.Background())
			if st := h.world().state; !st.LastCallAt.Equal(tc.want) {
				t.Fatalf("last-call-at = %v, want %v", st.LastCallAt, tc.want)
			}
		})
	}
}

// An LWA outage while a new secret is verified says nothing about the vault: the secret is
// staged and its message leaves, the application stays ready, and the pending phase retries
// with a delay that grows with each failure.
func TestLWAOutageDuringVerificationDoesNotMarkTheVaultUnreachable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*day))
	h.r.Tick(context.Background())
	_, msg := h.mint("slow", t0.Add(180*day), t0.Add(7*day))
	h.amzn.fail(&spapi.Error{API: "lwa", Op: "token", StatusCode: http.StatusServiceUnavailable, Kind: spapi.ErrTransient}, nil, false)
	if res := h.handle(msg); !res.Delete {
		t.Fatalf("the staged secret's message was kept: %+v", res)
	}
	first := h.tickAt(h.clk.Now())
	firstWait := first.Sub(h.clk.Now())
	second := h.tickAt(first)
	third := h.tickAt(second)
	if secondWait, thirdWait := second.Sub(first), third.Sub(second); thirdWait <= firstWait || secondWait < firstWait/2 {
		t.Fatalf("waits %v, %v, %v between verification attempts: want a growing backoff", firstWait, secondWait, thirdWait)
	}
	if s := h.status(); s.ConsecutiveFailures != 0 || s.LastError != "" || !s.Known || s.Phase != PhasePending {
		t.Fatalf("an LWA failure showed as a vault failure, or the phase is wrong: %+v", s)
	}
}

// A vault call that fails while a new secret is handled, before or after it took effect: before
// the secret is staged, the message stays and its redelivery finishes the rotation; once it is
// staged, the message leaves (staged) and the next pass finishes from the vault. Either way
// nothing asks Amazon again and no timeout is counted.
func TestVaultFaultsDuringAMessageAreFinished(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		op      string
		applied bool
		// What the failed delivery leaves: the new secret current, or pending; staged: the
		// secret was durable, so the message was deleted.
		wantCurrent, wantPending, staged bool
	}{
		{"reading the secret", fakesm.OpDescribeSecret, false, false, false, false},
		{"staging refused", fakesm.OpPutSecretValue, false, false, false, false},
		{"staging's answer lost", fakesm.OpPutSecretValue, true, false, true, false},
		{"promotion refused", fakesm.OpUpdateSecretVersionStage, false, false, true, true},
		{"promotion's answer lost", fakesm.OpUpdateSecretVersionStage, true, true, false, true},
		{"clearing the bookkeeping", fakesm.OpUntagResource, false, true, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, t0.Add(20*day))
			ctx := context.Background()
			h.r.Tick(ctx)
			newSecret, msg := h.delivered()
			h.failVaultAfter(tc.op, 1, tc.applied)
			if res := h.handle(msg); res.Delete != tc.staged {
				t.Fatalf("%s failed: deleted = %v, want %v (deleted only once the secret is staged)", tc.op, res.Delete, tc.staged)
			}
			w := h.world()
			if cur := w.cur.Record.ClientSecret.Equal(newSecret); cur != tc.wantCurrent || w.pending != tc.wantPending {
				t.Fatalf("after the failure: new secret current = %v, pending = %v; want %v, %v (%v)", cur, w.pending,
					tc.wantCurrent, tc.wantPending, w.allVersions)
			}
			if !w.cur.Record.ClientSecret.Equal(newSecret) && !w.cur.Record.ClientSecret.Equal(h.old) {
				t.Fatal("AWSCURRENT holds neither the old nor the new secret")
			}
			if tc.staged {
				h.r.Tick(ctx) // the staged outcome asks for a pass at once
			} else {
				msg.ReceiveCount++
				if res := h.handle(msg); !res.Delete {
					t.Fatalf("the redelivery was not finished: %+v", res)
				}
			}
			w = h.world()
			if !w.cur.Record.ClientSecret.Equal(newSecret) || !w.prev.Record.ClientSecret.Equal(h.old) || w.pending || w.daemonTags != 0 {
				t.Fatalf("after the finish: versions %v, state %+v", w.allVersions, w.state)
			}
			if n := h.obs.rotations(ResultSuccess); n != 1 {
				t.Fatalf("%d successes counted, want 1", n)
			}
			h.clk.Advance(2 * time.Hour) // past the await deadline
			h.r.Tick(ctx)
			if _, rotates := h.amzn.counts(); rotates != 1 || h.obs.rotations(ResultTimeout) != 0 {
				t.Fatalf("rotate calls = %d, timeouts %d after the rotation finished; want 1 and none", rotates, h.obs.rotations(ResultTimeout))
			}
		})
	}
}
