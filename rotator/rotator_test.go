package rotator

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const clientID = "amzn1.application-oa2-client.test"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type harness struct {
	r     *Rotator
	clk   *clock.Fake
	vault *fakeVault
	amzn  *fakeAmazon
	obs   *countingObserver
	logs  *observer.ObservedLogs
	old   secret.Value
}

// newHarness: one application whose current secret expires at expiry.
func newHarness(t *testing.T, expiry time.Time) *harness {
	t.Helper()
	old := secret.New("amzn1.oa2-cs.v1.oldsecretoldsecretoldsecret")
	core, logs := observer.New(zap.DebugLevel)
	h := &harness{
		clk:   clock.NewFake(t0),
		vault: newFakeVault(vault.Record{ClientID: clientID, ClientSecret: old, ExpiresAt: expiry}),
		amzn:  &fakeAmazon{valid: []secret.Value{old}},
		obs:   newObserver(),
		logs:  logs,
		old:   old,
	}
	h.r = h.newRotator(zap.New(core))
	t.Cleanup(func() { h.assertNoSecretLogged(t) })
	return h
}

func (h *harness) newRotator(log *zap.Logger) *Rotator {
	return New(Options{
		Apps:  []App{{Name: "app", ClientID: clientID, Region: spapi.Region("na"), SecretID: "secret", ApplicationID: "amzn1.sp.solution.app"}},
		Vault: h.vault, LWA: h.amzn, SPAPI: h.amzn, Clock: h.clk, Log: log, Observer: h.obs,
		RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, Rand: func() float64 { return 0.5 },
	})
}

func (h *harness) assertNoSecretLogged(t *testing.T) {
	t.Helper()
	for _, e := range h.logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, "oa2-cs.v1.") {
			t.Errorf("a log line carries a secret value: %s", line)
		}
	}
}

// mint makes a secret Amazon would accept, and the message carrying it.
func (h *harness) mint(id string, expires, oldExpires time.Time) (secret.Value, notifications.Message) {
	s := secret.New("amzn1.oa2-cs.v1.new" + id + "secretvalue")
	h.amzn.mu.Lock()
	h.amzn.valid = append(h.amzn.valid, s)
	h.amzn.mu.Unlock()
	return s, newSecretMessage(id, s, expires, oldExpires)
}

func newSecretMessage(id string, s secret.Value, expires, oldExpires time.Time) notifications.Message {
	body := fmt.Sprintf(`{"notificationVersion":"1.0","notificationType":"APPLICATION_OAUTH_CLIENT_NEW_SECRET","payloadVersion":"2023-11-30",
"eventTime":"2026-03-01T12:00:00.000Z","payload":{"applicationOAuthClientNewSecret":{"clientId":%q,"newClientSecret":%q,
"newClientSecretExpiryTime":%q,"oldClientSecretExpiryTime":%q}},"notificationMetadata":{"applicationId":"amzn1.sp.solution.app",
"subscriptionId":"sub","publishTime":"2026-03-01T12:00:00.000Z","notificationId":%q}}`,
		clientID, s.Reveal(), expires.Format(time.RFC3339Nano), oldExpires.Format(time.RFC3339Nano), id)
	return notifications.Message{ID: "m-" + id, Body: []byte(body), ReceiveCount: 1}
}

func expiryMessage(id, client, appID string, expires time.Time) notifications.Message {
	body := fmt.Sprintf(`{"notificationVersion":"1.0","notificationType":"APPLICATION_OAUTH_CLIENT_SECRET_EXPIRY","payloadVersion":"2023-11-30",
"eventTime":"2026-03-01T12:00:00.000Z","payload":{"applicationOAuthClientSecretExpiry":{"clientId":%q,"clientSecretExpiryTime":%q,
"clientSecretExpiryReason":"PERIODIC_ROTATION"}},"notificationMetadata":{"applicationId":%q,"subscriptionId":"sub",
"publishTime":"2026-03-01T12:00:00.000Z","notificationId":%q}}`, client, expires.Format(time.RFC3339Nano), appID, id)
	return notifications.Message{ID: "m-" + id, Body: []byte(body), ReceiveCount: 1}
}

func TestWhenRotationIsDue(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
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
			h := newHarness(t, tc.expiry)
			h.vault.state.NoticedExpiry = tc.notice
			if tc.manual {
				h.r.Trigger("app")
			}
			next := h.r.Tick(context.Background())
			if got := h.amzn.calls() == 1; got != tc.wantRotate {
				t.Fatalf("rotated = %v, want %v", got, tc.wantRotate)
			}
			if tc.wantRotate {
				if _, _, _, st := h.vault.snapshot(); !st.RequestedAt.Equal(t0) {
					t.Errorf("requested-at state = %v, want %v", st.RequestedAt, t0)
				}
				if !next.Equal(t0.Add(time.Hour)) {
					t.Errorf("next wake-up = %v, want the await deadline %v", next, t0.Add(time.Hour))
				}
				return
			}
			if !next.Equal(tc.wantNext) {
				t.Errorf("next wake-up = %v, want %v", next, tc.wantNext)
			}
		})
	}
}

func TestNewSecretIsVerifiedThenPromoted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	ctx := context.Background()
	h.r.Tick(ctx)
	newSecret, msg := h.mint("n1", t0.Add(180*24*time.Hour), t0.Add(7*24*time.Hour))
	res := h.r.Handle(ctx, msg)
	if !res.Delete {
		t.Fatalf("result = %+v, want Delete", res)
	}
	cur, prev, pending, st := h.vault.snapshot()
	if !cur.Record.ClientSecret.Equal(newSecret) || cur.ID != vault.TokenFor("n1") {
		t.Errorf("AWSCURRENT is not the new secret under the notification's token (id %s)", cur.ID)
	}
	if !prev.Record.ClientSecret.Equal(h.old) {
		t.Errorf("AWSPREVIOUS does not hold the old secret")
	}
	if !cur.Record.PreviousExpiresAt.Equal(t0.Add(7 * 24 * time.Hour)) {
		t.Errorf("previous expiry = %v", cur.Record.PreviousExpiresAt)
	}
	if pending {
		t.Errorf("AWSPENDING left behind")
	}
	if st != (vault.RotationState{}) {
		t.Errorf("rotation state not cleared: %+v", st)
	}
	if len(h.amzn.verified) < 2 || !h.amzn.verified[len(h.amzn.verified)-1].Equal(newSecret) {
		t.Errorf("the new secret was not verified with LWA before promotion")
	}
	if h.obs.get(h.obs.rotations, ResultSuccess) != 1 || h.obs.get(h.obs.notifications, OutcomeProcessed) != 1 {
		t.Errorf("counters: %+v %+v", h.obs.rotations, h.obs.notifications)
	}
	s := h.r.Snapshot()[0]
	if !s.LastSuccess.Equal(t0) || !s.CurrentExpiry.Equal(t0.Add(180*24*time.Hour)) || !s.InFlightSince.IsZero() {
		t.Errorf("status after success: %+v", s)
	}
}

func TestRejectedSecretChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	ctx := context.Background()
	planted := secret.New("amzn1.oa2-cs.v1.plantedplantedplanted")
	res := h.r.Handle(ctx, newSecretMessage("p1", planted, t0.Add(180*24*time.Hour), t0.Add(7*24*time.Hour)))
	if res.Delete || res.RetryAfter != 15*time.Minute {
		t.Fatalf("result = %+v, want the message left for the dead-letter queue", res)
	}
	cur, _, pending, _ := h.vault.snapshot()
	if !cur.Record.ClientSecret.Equal(h.old) || pending {
		t.Fatalf("the vault changed for a rejected secret (pending %v)", pending)
	}
	if h.obs.get(h.obs.rotations, ResultRejected) != 1 || h.obs.get(h.obs.notifications, OutcomeRejected) != 1 {
		t.Fatalf("rejection not counted: %+v %+v", h.obs.rotations, h.obs.notifications)
	}
}

func TestOlderAndDuplicateSecretsNeverGoBackwards(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	ctx := context.Background()
	newer, newerMsg := h.mint("newer", t0.Add(181*24*time.Hour), t0.Add(7*24*time.Hour))
	_, olderMsg := h.mint("older", t0.Add(180*24*time.Hour), t0.Add(7*24*time.Hour))

	tests := []struct {
		name    string
		msg     notifications.Message
		outcome string
	}{
		{"newer first", newerMsg, OutcomeProcessed},
		{"older after newer (reordered)", olderMsg, OutcomeStale},
		{"newer again (duplicate)", newerMsg, OutcomeDuplicate},
	}
	for _, tc := range tests { // sequential: each step builds on the last
		res := h.r.Handle(ctx, tc.msg)
		if !res.Delete {
			t.Fatalf("%s: result %+v, want Delete", tc.name, res)
		}
		if n := h.obs.get(h.obs.notifications, tc.outcome); n != 1 {
			t.Fatalf("%s: %s counted %d times", tc.name, tc.outcome, n)
		}
		cur, _, pending, _ := h.vault.snapshot()
		if !cur.Record.ClientSecret.Equal(newer) || pending {
			t.Fatalf("%s: AWSCURRENT is not the newest secret, or AWSPENDING left (pending %v)", tc.name, pending)
		}
	}
}

func TestMessagesTheDaemonMustNotAcceptStayForTheDLQ(t *testing.T) {
	t.Parallel()
	exp := t0.Add(100 * 24 * time.Hour)
	tests := []struct {
		name    string
		msg     notifications.Message
		outcome string
	}{
		{"malformed", notifications.Message{ID: "x", Body: []byte(`{"notificationType":`)}, OutcomeMalformed},
		{"unknown type", notifications.Message{ID: "x", Body: []byte(`{"notificationVersion":"1.0","notificationType":"ANY_OFFER_CHANGED"}`)}, OutcomeMalformed},
		{"unknown client", expiryMessage("u1", "amzn1.application-oa2-client.other", "amzn1.sp.solution.app", exp), OutcomeUnknownClient},
		{"another application id", expiryMessage("u2", clientID, "amzn1.sp.solution.other", exp), OutcomeRejected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, t0.Add(100*24*time.Hour))
			res := h.r.Handle(context.Background(), tc.msg)
			if res.Delete || res.RetryAfter <= 0 {
				t.Fatalf("result = %+v: must stay on the queue, delayed", res)
			}
			if h.obs.get(h.obs.notifications, tc.outcome) != 1 {
				t.Fatalf("outcome %s not counted: %+v", tc.outcome, h.obs.notifications)
			}
		})
	}
}

func TestExpiryNoticeIsRecordedAndSchedulesRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, time.Time{}) // an operator-seeded secret without expiry
	ctx := context.Background()
	notice := t0.Add(45 * 24 * time.Hour)
	if res := h.r.Handle(ctx, expiryMessage("e1", clientID, "amzn1.sp.solution.app", notice)); !res.Delete {
		t.Fatalf("result = %+v, want Delete once recorded", res)
	}
	if _, _, _, st := h.vault.snapshot(); !st.NoticedExpiry.Equal(notice) {
		t.Fatalf("noticed expiry = %v, want %v", st.NoticedExpiry, notice)
	}
	h.r.Tick(ctx)
	if s := h.r.Snapshot()[0]; !s.NextRotation.Equal(notice.Add(-30*24*time.Hour)) || h.amzn.calls() != 0 {
		t.Fatalf("next rotation = %v, calls = %d: want planned at %v and no call yet", s.NextRotation, h.amzn.calls(), notice.Add(-30*24*time.Hour))
	}
	h.clk.Set(notice.Add(-30 * 24 * time.Hour))
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("no rotation at the planned time")
	}
}

func TestExpiryNoticeAboutWhichSecret(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	prevExpiry := t0.Add(3 * day)
	tests := []struct {
		name      string
		notice    time.Time
		outcome   string
		rotateNow bool
	}{
		{"about the previous secret", prevExpiry.Add(time.Millisecond), OutcomeStale, false},
		{"about an older secret", prevExpiry.Add(-2 * day), OutcomeStale, false},
		{"already past", t0.Add(-day), OutcomeStale, false},
		// A rotate call whose secret never reached us shortened the current secret's life:
		// Amazon's notice is the only word of it, and must be acted on.
		{"current secret shortened", t0.Add(6 * day), OutcomeProcessed, true},
		{"the current secret's own expiry", t0.Add(170 * day), OutcomeProcessed, false},
		// Sent (at t0) before the current secret was minted (stored expiry 185 days out): about an
		// older secret, even though its expiry is later than the previous secret's.
		{"sent before the current secret existed", t0.Add(20 * day), OutcomeStale, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stored := t0.Add(170 * day)
			if tc.name == "sent before the current secret existed" {
				stored = t0.Add(185 * day)
			}
			h := newHarness(t, stored)
			h.vault.versions["v0"] = vault.Record{ClientID: clientID, ClientSecret: h.old, ExpiresAt: stored, PreviousExpiresAt: prevExpiry}
			res := h.r.Handle(context.Background(), expiryMessage("e0", clientID, "amzn1.sp.solution.app", tc.notice))
			if !res.Delete || h.obs.get(h.obs.notifications, tc.outcome) != 1 {
				t.Fatalf("result %+v, counters %+v: want %s and deleted", res, h.obs.notifications, tc.outcome)
			}
			_, _, _, st := h.vault.snapshot()
			if recorded := !st.NoticedExpiry.IsZero(); recorded != (tc.outcome == OutcomeProcessed) {
				t.Fatalf("notice recorded = %v for outcome %s", recorded, tc.outcome)
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
	h := newHarness(t, t0.Add(20*24*time.Hour))
	ctx := context.Background()
	h.r.Tick(ctx) // rotation requested
	newSecret, msg := h.mint("n1", t0.Add(180*24*time.Hour), t0.Add(7*24*time.Hour))
	h.amzn.tokenErr = &spapi.Error{StatusCode: 429, Kind: spapi.ErrThrottled}
	if res := h.r.Handle(ctx, msg); res.Delete {
		t.Fatal("deleted a message whose secret could not be verified")
	}
	// LWA stays throttled past the await deadline: the secret has arrived, so no second rotate.
	h.clk.Advance(2 * time.Hour)
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("rotate called %d times while the new secret was pending, want 1", h.amzn.calls())
	}
	h.amzn.tokenErr = nil
	h.r.Tick(ctx)
	if cur, _, pending, _ := h.vault.snapshot(); !cur.Record.ClientSecret.Equal(newSecret) || pending {
		t.Fatal("the pending secret was not promoted once LWA answered")
	}
}

func TestDelayedOlderSecretKeepsTheLaterRequestInFlight(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
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
			h := newHarness(t, t0.Add(20*day))
			ctx := context.Background()
			h.vault.state = tc.st
			// A secret minted a minute before the latest call arrives late.
			_, msg := h.mint("late", t0.Add(180*day-time.Minute), t0.Add(7*day))
			if res := h.r.Handle(ctx, msg); !res.Delete {
				t.Fatalf("result %+v", res)
			}
			if _, _, _, st := h.vault.snapshot(); !st.RequestedAt.Equal(t0) || st.RotationID != "r2" {
				t.Fatalf("the later call was forgotten: %+v", st)
			}
			// Its secret never comes: the watchdog fires and asks again.
			h.clk.Set(t0.Add(2 * day))
			h.r.Tick(ctx)
			if h.obs.get(h.obs.rotations, ResultTimeout) != 1 {
				t.Fatal("no watchdog for the call still owed")
			}
			// ...and asks again after the backoff, although the stored expiry looks far away.
			_, _, _, st := h.vault.snapshot()
			h.clk.Set(st.NextAttemptAt)
			h.r.Tick(ctx)
			if h.amzn.calls() != 1 {
				t.Fatalf("rotate calls = %d after the backoff, want 1", h.amzn.calls())
			}
		})
	}
}

func TestSecretOfTheLatestCallClearsTheState(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	h.vault.state = vault.RotationState{RequestedAt: t0, LastCallAt: t0, RotationID: "r1", Attempts: 3}
	// Minted 300 ms after the call was about to be made, as Amazon does.
	_, msg := h.mint("answer", t0.Add(180*24*time.Hour+300*time.Millisecond), t0.Add(7*24*time.Hour))
	if res := h.r.Handle(context.Background(), msg); !res.Delete {
		t.Fatalf("result %+v", res)
	}
	if _, _, _, st := h.vault.snapshot(); st != (vault.RotationState{}) {
		t.Fatalf("state not cleared: %+v", st)
	}
}

func TestWatchdogRetriesWhenTheNewSecretNeverArrives(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	ctx := context.Background()
	h.r.Tick(ctx)
	h.clk.Advance(59 * time.Minute)
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("rotated again before the await deadline")
	}
	h.clk.Advance(time.Minute)
	next := h.r.Tick(ctx)
	if h.obs.get(h.obs.rotations, ResultTimeout) != 1 {
		t.Fatalf("deadline not reported: %+v", h.obs.rotations)
	}
	_, _, _, st := h.vault.snapshot()
	if st.Attempts != 1 || !st.RequestedAt.IsZero() || !st.NextAttemptAt.After(h.clk.Now()) {
		t.Fatalf("state after the deadline: %+v", st)
	}
	if !next.Equal(st.NextAttemptAt) {
		t.Fatalf("next = %v, want the backoff time %v", next, st.NextAttemptAt)
	}
	// A restart in between loses nothing: the backoff lives in the vault.
	h.r = h.newRotator(zap.NewNop())
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("a restart ignored the stored backoff")
	}
	h.clk.Set(st.NextAttemptAt)
	h.r.Tick(ctx)
	if h.amzn.calls() != 2 {
		t.Fatalf("no retry after the backoff (calls %d)", h.amzn.calls())
	}
}

func TestRestartAfterTheRotateCallDoesNotRotateTwice(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	ctx := context.Background()
	h.r.Tick(ctx)
	h.r = h.newRotator(zap.NewNop()) // the process died after the rotate call
	h.clk.Advance(10 * time.Minute)
	h.r.Tick(ctx)
	if h.amzn.calls() != 1 {
		t.Fatalf("rotate called %d times across a restart, want 1", h.amzn.calls())
	}
	if s := h.r.Snapshot()[0]; !s.InFlightSince.Equal(t0) {
		t.Fatalf("the restarted daemon does not show the rotation in flight: %+v", s)
	}
}

func TestInterruptedPromotionIsResumed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	ctx := context.Background()
	newSecret, _ := h.mint("n2", t0.Add(180*24*time.Hour), t0.Add(7*24*time.Hour))
	// The process died after staging: AWSPENDING holds a verified-able secret, the message is gone.
	if err := h.vault.Stage(ctx, "secret", vault.TokenFor("n2"), vault.Record{ClientID: clientID, ClientSecret: newSecret,
		ExpiresAt: t0.Add(180 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	h.r.Tick(ctx)
	cur, prev, pending, _ := h.vault.snapshot()
	if !cur.Record.ClientSecret.Equal(newSecret) || !prev.Record.ClientSecret.Equal(h.old) || pending {
		t.Fatalf("the pending secret was not resumed to AWSCURRENT (pending %v)", pending)
	}
	if h.amzn.calls() != 0 {
		t.Fatalf("rotated although a newer secret was already pending")
	}
}

func TestRequestFailuresBackOffAndAreClassified(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		tokenErr  error
		rotateErr error
		result    string
		minWait   time.Duration
	}{
		{"throttled honours Retry-After", nil, &spapi.Error{StatusCode: 429, Kind: spapi.ErrThrottled, RetryAfter: 2 * time.Hour}, ResultRequestFailed, 2 * time.Hour},
		{"not enrolled", nil, &spapi.Error{StatusCode: 400, Kind: spapi.ErrNotEnrolled}, ResultNotEnrolled, 30 * time.Second},
		{"current secret rejected", &spapi.Error{StatusCode: 401, Kind: spapi.ErrInvalidClient}, nil, ResultCurrentInvalid, 30 * time.Second},
		{"network", &spapi.Error{Kind: spapi.ErrTransient, Err: errors.New("reset")}, nil, ResultRequestFailed, 30 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, t0.Add(20*24*time.Hour))
			h.amzn.tokenErr, h.amzn.rotateErr = tc.tokenErr, tc.rotateErr
			next := h.r.Tick(context.Background())
			if h.obs.get(h.obs.rotations, tc.result) != 1 {
				t.Fatalf("result %s not counted: %+v", tc.result, h.obs.rotations)
			}
			_, _, _, st := h.vault.snapshot()
			if st.Attempts != 1 || !st.RequestedAt.IsZero() || st.NextAttemptAt.Sub(t0) < tc.minWait {
				t.Fatalf("state %+v: want one attempt, nothing in flight, next attempt at least %s away", st, tc.minWait)
			}
			calls := h.amzn.calls()
			for next.Before(st.NextAttemptAt) { // waking early must not retry early
				h.clk.Set(next)
				next = h.r.Tick(context.Background())
				if h.amzn.calls() != calls {
					t.Fatalf("retried at %v, before the next attempt %v", h.clk.Now(), st.NextAttemptAt)
				}
			}
		})
	}
}

func TestVaultOutageIsRetriedAndShownInStatus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	h.vault.failNext = 1
	next := h.r.Tick(context.Background())
	if s := h.r.Snapshot()[0]; s.ConsecutiveFailures != 1 || s.LastError == "" {
		t.Fatalf("status after a vault failure: %+v", s)
	}
	if d := next.Sub(t0); d < vaultRetryMin/2 || d > vaultRetryMax {
		t.Fatalf("retry in %s, want within [%s, %s]", d, vaultRetryMin/2, vaultRetryMax)
	}
	h.r.Tick(context.Background())
	if s := h.r.Snapshot()[0]; s.ConsecutiveFailures != 0 || h.amzn.calls() != 1 {
		t.Fatalf("did not recover: %+v, calls %d", s, h.amzn.calls())
	}
}

// TestNoTagRoomIsReportedNotRetriedInALoop: a secret full of other tags cannot hold the intent
// tags, so no rotate call is made; the scheduler says so in the status and looks again in an
// hour, not every few seconds.
func TestNoTagRoomIsReportedNotRetriedInALoop(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour)) // inside renewBefore: due
	h.vault.saveErr = fmt.Errorf("tagging rotation state on secret s: %w", vault.ErrNoTagRoom)
	next := h.r.Tick(context.Background())
	if d := next.Sub(t0); d != idleRecheck {
		t.Fatalf("next look in %s, want %s", d, idleRecheck)
	}
	if h.amzn.calls() != 0 {
		t.Fatalf("rotate called %d times without the intent saved", h.amzn.calls())
	}
	if s := h.r.Snapshot()[0]; !strings.Contains(s.LastError, "no room for the daemon's tags") {
		t.Fatalf("status does not say why: %+v", s)
	}
}

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{1, 0, 30 * time.Second},
		{1, 0.999999, 60 * time.Second},
		{3, 0, 2 * time.Minute},
		{20, 0.5, 45 * time.Minute},
	}
	for _, tc := range tests {
		got := Backoff(tc.attempt, time.Minute, time.Hour, func() float64 { return tc.rnd })
		if got.Round(time.Second) != tc.want {
			t.Errorf("Backoff(%d, rnd %v) = %s, want %s", tc.attempt, tc.rnd, got, tc.want)
		}
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(100*24*time.Hour))
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
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

func TestOnlyAllowedSendersAreAccepted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	h.r = New(Options{
		Apps:  []App{{Name: "app", ClientID: clientID, Region: spapi.Region("na"), SecretID: "secret"}},
		Vault: h.vault, LWA: h.amzn, SPAPI: h.amzn, Clock: h.clk, Observer: h.obs, AllowedSenderIDs: []string{"AIDAAMAZON"},
	})
	newSecret, msg := h.mint("s1", t0.Add(180*24*time.Hour), t0.Add(7*24*time.Hour))
	msg.SenderID = "AIDASTRANGER"
	if res := h.r.Handle(context.Background(), msg); res.Delete {
		t.Fatal("a message from a stranger was accepted")
	}
	if cur, _, _, _ := h.vault.snapshot(); cur.Record.ClientSecret.Equal(newSecret) {
		t.Fatal("a stranger's secret reached AWSCURRENT")
	}
	msg.SenderID = "AIDAAMAZON"
	if res := h.r.Handle(context.Background(), msg); !res.Delete {
		t.Fatalf("the allowed sender's message was refused: %+v", res)
	}
	if cur, _, _, _ := h.vault.snapshot(); !cur.Record.ClientSecret.Equal(newSecret) {
		t.Fatal("the allowed sender's secret was not promoted")
	}
}

// Two replicas: while this one verified an older secret, the other promoted a newer one. The
// compare-and-set refuses the older promotion, and the retry acknowledges it as stale.
func TestPromotionLosesTheRaceToANewerSecret(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	ctx := context.Background()
	_, olderMsg := h.mint("older", t0.Add(180*24*time.Hour), t0.Add(7*24*time.Hour))
	newer, _ := h.mint("newer", t0.Add(181*24*time.Hour), t0.Add(7*24*time.Hour))
	h.amzn.onToken = func() { // the other replica acts between our verification and our promotion
		h.amzn.onToken = nil
		h.vault.mu.Lock()
		h.vault.versions["other"] = vault.Record{ClientID: clientID, ClientSecret: newer, ExpiresAt: t0.Add(181 * 24 * time.Hour)}
		h.vault.labels["AWSPREVIOUS"], h.vault.labels["AWSCURRENT"] = h.vault.labels["AWSCURRENT"], "other"
		h.vault.mu.Unlock()
	}
	if res := h.r.Handle(ctx, olderMsg); res.Delete {
		t.Fatal("deleted the message although its promotion lost the race")
	}
	if cur, _, _, _ := h.vault.snapshot(); !cur.Record.ClientSecret.Equal(newer) {
		t.Fatal("AWSCURRENT went backwards to the older secret")
	}
	if res := h.r.Handle(ctx, olderMsg); !res.Delete || h.obs.get(h.obs.notifications, OutcomeStale) != 1 {
		t.Fatalf("redelivery: %+v, counters %+v; want it acknowledged as stale", res, h.obs.notifications)
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
		want      time.Time
	}{
		{"throttled", nil, &spapi.Error{StatusCode: 429, Kind: spapi.ErrThrottled}, earlier},
		{"no token, no call", &spapi.Error{StatusCode: 500, Kind: spapi.ErrTransient}, nil, earlier},
		{"server error: may have minted", nil, &spapi.Error{StatusCode: 503, Kind: spapi.ErrTransient}, t0},
		{"accepted", nil, nil, t0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, t0.Add(20*24*time.Hour))
			h.vault.state = vault.RotationState{LastCallAt: earlier, Attempts: 1}
			h.amzn.tokenErr, h.amzn.rotateErr = tc.tokenErr, tc.rotateErr
			h.r.Tick(context.Background())
			if _, _, _, st := h.vault.snapshot(); !st.LastCallAt.Equal(tc.want) {
				t.Fatalf("last-call-at = %v, want %v", st.LastCallAt, tc.want)
			}
		})
	}
}

// A reload (SIGHUP) while an application is busy with a slow vault call must neither wait for
// it under the rotator's lock nor deadlock with it.
func TestReconfigureWhileAnApplicationIsBusy(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(100*24*time.Hour))
	release := make(chan struct{})
	entered := make(chan struct{})
	h.vault.mu.Lock()
	h.vault.block = func() { close(entered); <-release }
	h.vault.mu.Unlock()
	tickDone := make(chan struct{})
	go func() { h.r.Tick(context.Background()); close(tickDone) }()
	<-entered // the tick holds the application and waits on the vault
	reconfigured := make(chan struct{})
	go func() {
		h.r.Reconfigure([]App{{Name: "renamed", ClientID: clientID, Region: "na", SecretID: "secret"}}, 0, 0, 0, 0)
		close(reconfigured)
	}()
	waitBlockedOnLock(t, "(*Rotator).reconfigure")
	// The rotator's lock is free while the reload waits for the busy application.
	snap := make(chan []Status, 1)
	go func() { snap <- h.r.Snapshot() }()
	select {
	case s := <-snap:
		if len(s) != 1 {
			t.Fatalf("snapshot = %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Snapshot blocked while an application was busy: the reload holds the rotator's lock")
	}
	close(release)
	for name, ch := range map[string]chan struct{}{"tick": tickDone, "reconfigure": reconfigured} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never finished: deadlock between the reload and the tick", name)
		}
	}
	if s := h.r.Snapshot(); s[0].App != "renamed" {
		t.Fatalf("status after the reload names %q", s[0].App)
	}
}

// TestTriggerDoesNotWaitForABusyApplication: SIGUSR1 arrives on the signal loop while an
// application is in a slow vault call; Trigger returns at once (the loop must stay free for
// SIGTERM), and the rotation it asked for follows once the call is done.
func TestTriggerDoesNotWaitForABusyApplication(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(150*24*time.Hour)) // nothing due without the trigger
	release := make(chan struct{})
	entered := make(chan struct{})
	h.vault.mu.Lock()
	h.vault.block = func() { close(entered); <-release }
	h.vault.mu.Unlock()
	tickDone := make(chan struct{})
	go func() { h.r.Tick(context.Background()); close(tickDone) }()
	<-entered
	triggered := make(chan bool, 1)
	go func() { triggered <- h.r.Trigger("") }()
	select {
	case ok := <-triggered:
		if !ok {
			t.Fatal("Trigger matched no application")
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("Trigger waited for the busy application")
	}
	close(release)
	<-tickDone
	h.r.Tick(context.Background())
	if h.amzn.calls() != 1 {
		t.Fatalf("rotate calls after the trigger = %d, want 1", h.amzn.calls())
	}
}

// waitBlockedOnLock returns once a goroutine running fn waits on a mutex. It reads goroutine
// stacks rather than sleeping, so the test neither races nor waits longer than needed.
func waitBlockedOnLock(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for range 100000 {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, fn) && strings.Contains(g, "sync.(*Mutex).Lock") {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatalf("no goroutine in %s ever waited on a lock", fn)
}

// A message that fails on LWA says nothing about the vault: the application stays ready, while the
// message's redelivery delay grows with each failure.
func TestMessageRetriesDoNotMarkTheVaultUnreachable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t0.Add(20*24*time.Hour))
	_, msg := h.mint("slow", t0.Add(180*24*time.Hour), t0.Add(7*24*time.Hour))
	h.amzn.tokenErr = &spapi.Error{StatusCode: 503, Kind: spapi.ErrTransient}
	first := h.r.Handle(context.Background(), msg)
	second := h.r.Handle(context.Background(), msg)
	if first.Delete || second.Delete || second.RetryAfter <= first.RetryAfter {
		t.Fatalf("retries %+v then %+v: want both kept, the second later", first, second)
	}
	if s := h.r.Snapshot()[0]; s.ConsecutiveFailures != 0 {
		t.Fatalf("an LWA failure counted as %d vault failures", s.ConsecutiveFailures)
	}
}
