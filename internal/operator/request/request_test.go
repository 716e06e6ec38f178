package request

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/rotator/window"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const client = "amzn1.application-oa2-client.request"

// The settings of rotator/decision_examples_test.go, whose rows work out the literal times below.
var model = Model{App: rotator.App{Name: "main", ClientID: client, SecretID: "lwa/main"},
	Settings: rotator.Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
		ProbeEvery: 24 * time.Hour, CanaryEvery: 7 * 24 * time.Hour, RotateInterval: time.Minute}}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The refusal names why, the phase the daemon is in and when it acts next.
func TestCheck(t *testing.T) {
	t.Parallel()
	cur := vault.Version{ID: "v1", Record: vault.Record{ClientID: client, ExpiresAt: at("2026-09-01T12:00:00Z")}}
	snap := func(st vault.RotationState) vault.Snapshot { return vault.Snapshot{Current: cur, State: st} }
	staged := snap(vault.RotationState{})
	staged.Pending = &vault.Version{ID: "v2", Record: vault.Record{ClientID: client, ExpiresAt: at("2026-11-28T12:00:00Z")}}
	tests := []struct {
		name string
		s    vault.Snapshot
		want string // "" accepts
	}{
		{"nothing going on", snap(vault.RotationState{}), ""},
		{"in flight", snap(vault.RotationState{RequestedAt: at("2026-06-01T11:30:00Z"), LastCallAt: at("2026-06-01T11:30:00Z"), RotationID: "r1"}),
			"already in flight since 2026-06-01T11:30:00Z (rotation r1); its new secret is awaited (phase requested, the daemon acts next at 2026-06-01T12:30:31.581112375Z)"},
		{"a new secret staged", staged, "a new secret (version v2) is staged as AWSPENDING and waits to be verified and promoted (phase pending, the daemon acts next at 2026-06-01T12:00:02.5Z)"},
		{"a request waits", snap(vault.RotationState{Request: vault.RotationRequest{At: at("2026-06-01T11:59:59Z"), By: "ann@h"}}),
			"already requested at 2026-06-01T11:59:59Z by ann@h and waits for the daemon (phase due, the daemon acts next at 2026-06-01T12:00:00Z)"},
		{"a served request left behind", snap(vault.RotationState{Request: vault.RotationRequest{At: at("2026-06-01T11:00:00Z")}, ServedRequest: at("2026-06-01T11:00:00Z")}), ""},
		// The call's secret never came: owed, and Amazon refuses another call until 12:00:30.
		{"a rotate call 30 s ago", snap(vault.RotationState{LastCallAt: at("2026-06-01T11:59:30Z")}),
			"ask again after 2026-06-01T12:00:30Z (phase backing_off, the daemon acts next at 2026-06-01T12:00:30Z)"},
		{"a rotate call a minute ago", snap(vault.RotationState{LastCallAt: at("2026-06-01T11:59:00Z")}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Check(model, tc.s, now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check = %v, want accepted", err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want ErrRefused saying %q", err, tc.want)
			}
		})
	}
}

// world is one application's secret in the shared Secrets Manager model, read as the daemon reads it.
func world(t *testing.T, o fakesm.Options) (*fakesm.SM, *vault.Store, string) {
	t.Helper()
	sm := fakesm.New(o)
	out, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("lwa/main"),
		SecretString: aws.String(record(t, "amzn1.oa2-cs.v1.first", "2026-09-01T12:00:00Z")),
		Tags:         []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}}})
	if err != nil {
		t.Fatal(err)
	}
	return sm, &vault.Store{SM: sm}, aws.ToString(out.VersionId)
}

func record(t *testing.T, s, expires string) string {
	t.Helper()
	b, err := vault.Encode(vault.Record{ClientID: client, ClientSecret: secret.New(s), ExpiresAt: at(expires)}, vault.FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRequestWritesTheTagsOrRefuses(t *testing.T) {
	t.Parallel()
	sm, store, first := world(t, fakesm.Options{})
	clk := fakeclock.New(now)
	got, err := Request(context.Background(), store, sm, clk, model, "ann@bastion", "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Snapshot.Current.ID != first || !got.Request.At.Equal(now) {
		t.Fatalf("snapshot AWSCURRENT %s, request %+v", got.Snapshot.Current.ID, got.Request)
	}
	if d := got.Decision; d.Phase != rotator.PhaseDue || d.Reason != rotator.ReasonOperatorRequest || !d.NextActionAt.Equal(now) {
		t.Fatalf("the decision after the request: phase %s, reason %s, next %s; want due, operator-request, now", d.Phase, d.Reason, d.NextActionAt)
	}
	tags := sm.Tags("lwa/main")
	if tags[vault.TagRequestAt] != "2026-06-01T12:00:00Z" || tags[vault.TagRequestBy] != "ann@bastion" || tags["team"] != "payments" {
		t.Fatalf("tags after the request: %v", tags)
	}
	if _, ok := tags[vault.TagRequestReason]; ok {
		t.Fatal("an empty reason was written")
	}
	// A second request while the first waits is refused and writes nothing.
	clk.Advance(time.Second)
	if _, err := Request(context.Background(), store, sm, clk, model, "bob@elsewhere", ""); !errors.Is(err, ErrRefused) ||
		!strings.Contains(err.Error(), "already requested at 2026-06-01T12:00:00Z by ann@bastion") {
		t.Fatalf("second request = %v, want ErrRefused naming the first", err)
	}
	if sm.Tags("lwa/main")[vault.TagRequestBy] != "ann@bastion" {
		t.Fatal("a refused request overwrote the pending one")
	}
}

func TestRequestWithoutACurrentVersion(t *testing.T) {
	t.Parallel()
	sm := fakesm.New(fakesm.Options{})
	if _, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("lwa/main")}); err != nil {
		t.Fatal(err)
	}
	_, err := Request(context.Background(), &vault.Store{SM: sm}, sm, fakeclock.New(now), model, "ann", "")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "no AWSCURRENT") || sm.Count(fakesm.OpTagResource) != 0 {
		t.Fatalf("Request = %v (%d TagResource), want ErrRefused saying no AWSCURRENT, nothing written", err, sm.Count(fakesm.OpTagResource))
	}
}

// Wait reports each phase of the daemon's decision on its reads until AWSCURRENT moves.
func TestWaitFollowsThePhasesToPromotion(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sm *fakesm.SM
	describes, staged := 0, ""
	// The daemon's side, one step before each of Wait's reads (Wait runs on this goroutine alone).
	daemon := func(op, _ string) fakesm.Fault {
		if op != fakesm.OpDescribeSecret {
			return fakesm.Fault{}
		}
		describes++
		tag := func(k, v string) {
			if _, err := sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String("lwa/main"),
				Tags: []types.Tag{{Key: aws.String(k), Value: aws.String(v)}}}); err != nil {
				t.Error(err)
			}
		}
		switch describes {
		case 1:
			tag(vault.TagRequestAt, "2026-06-01T12:00:00Z")
		case 2:
			tag(vault.TagServedRequest, "2026-06-01T12:00:00Z")
			tag(vault.TagRequestedAt, "2026-06-01T12:00:01Z")
			tag(vault.TagLastCallAt, "2026-06-01T12:00:01Z")
		case 3:
			out, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("lwa/main"),
				SecretString: aws.String(record(t, "amzn1.oa2-cs.v1.second", "2026-11-28T12:00:02Z")), VersionStages: []string{vault.StagePending}})
			if err != nil {
				t.Error(err)
				return fakesm.Fault{}
			}
			staged = aws.ToString(out.VersionId)
		case 4:
			cur := vault.CurrentVersion(sm.Versions("lwa/main"))
			if _, err := sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("lwa/main"),
				VersionStage: aws.String(vault.StageCurrent), MoveToVersionId: aws.String(staged), RemoveFromVersionId: aws.String(cur)}); err != nil {
				t.Error(err)
			}
		}
		return fakesm.Fault{}
	}
	var store *vault.Store
	var first string
	sm, store, first = world(t, fakesm.Options{Fault: daemon})
	describes = 0 // the world's own set-up is not a poll
	clk := fakeclock.New(now)
	// Advance the fake clock whenever Wait sleeps.
	go func() {
		for i := 1; ctx.Err() == nil; i++ {
			if clk.WaitCreated(ctx, i) != nil {
				return
			}
			clk.Advance(time.Second)
		}
	}()
	var seen []string
	id, err := Wait(ctx, store, clk, model, first, time.Second, func(p Progress) {
		if p.Err != nil {
			seen = append(seen, "error: "+p.Err.Error())
			return
		}
		seen = append(seen, p.Decision.Phase.String()+"/"+string(p.Decision.Reason))
	})
	if err != nil {
		t.Fatal(err)
	}
	if id == first || id != staged {
		t.Fatalf("Wait = %q, want the staged version %q", id, staged)
	}
	want := "due/operator-request requested/awaiting-secret pending/new-secret-staged"
	if got := strings.Join(seen, " "); got != want {
		t.Fatalf("phases %q, want %q", got, want)
	}
}

// UntilWindow sleeps on the clock until the window opens, a minute at a time, and says when.
// 2026-06-01 is a Monday; Berlin is UTC+2 in June.
func TestUntilWindow(t *testing.T) {
	t.Parallel()
	berlin := func(open string) window.Schedule {
		w, problems := window.Parse("Europe/Berlin", []string{open}, 7*24*time.Hour)
		if len(problems) > 0 {
			t.Fatalf("window %q: %v", open, problems)
		}
		return w
	}
	tests := []struct {
		name   string
		w      window.Schedule
		want   string
		told   []string
		sleeps int // timers made: one per minute at most
	}{
		{"no window: at once", window.Schedule{}, "2026-06-01T12:00:00Z", nil, 0},
		{"open now: at once", berlin("Mon 13:00-15:00"), "2026-06-01T12:00:00Z", nil, 0},
		{"at the window's start it is open", berlin("Mon 14:00-15:00"), "2026-06-01T12:00:00Z", nil, 0},
		// 17:30 Berlin is 15:30 UTC: three and a half hours, 210 one-minute sleeps.
		{"later today", berlin("Mon 17:30-18:00"), "2026-06-01T15:30:00Z", []string{"2026-06-01T15:30:00Z"}, 210},
		// At its end (14:00 Berlin, 12:00 UTC) the window is closed: next Monday 12:00 Berlin.
		{"at the window's end: next week", berlin("Mon 12:00-14:00"), "2026-06-08T10:00:00Z", []string{"2026-06-08T10:00:00Z"}, 7*24*60 - 120},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			clk := fakeclock.New(now)
			// Move the clock to each timer's deadline as soon as it is made.
			go func() {
				for i := 1; clk.WaitCreated(ctx, i) == nil; i++ {
					if next, ok := clk.Next(); ok {
						clk.Set(next)
					}
				}
			}()
			var told []string
			got, err := UntilWindow(ctx, clk, tc.w, func(at time.Time) { told = append(told, stamp(at)) })
			if err != nil || stamp(got) != tc.want {
				t.Fatalf("UntilWindow = %s, %v; want %s", stamp(got), err, tc.want)
			}
			if strings.Join(told, " ") != strings.Join(tc.told, " ") || clk.Created() != tc.sleeps {
				t.Fatalf("told %q after %d sleeps; want %q after %d", told, clk.Created(), tc.told, tc.sleeps)
			}
		})
	}
}

// A machine that sleeps through the whole window wakes to the next opening, says so, and waits
// again rather than asking outside the window; Ctrl-C (the context) ends the wait, nothing written.
func TestUntilWindowAfterASuspendAndCancelled(t *testing.T) {
	t.Parallel()
	w, problems := window.Parse("UTC", []string{"Mon 12:30-13:00"}, 7*24*time.Hour)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := fakeclock.New(now)
	told := make(chan string, 4)
	done := make(chan error, 1)
	go func() {
		_, err := UntilWindow(ctx, clk, w, func(at time.Time) { told <- stamp(at) })
		done <- err
	}()
	limit, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	if err := clk.WaitCreated(limit, 1); err != nil {
		t.Fatal(err)
	}
	if got := <-told; got != "2026-06-01T12:30:00Z" {
		t.Fatalf("first opening told %s", got)
	}
	// The first minute's timer fires an hour late: the window opened and closed meanwhile.
	clk.Set(at("2026-06-01T13:00:00Z"))
	select {
	case got := <-told:
		if got != "2026-06-08T12:30:00Z" {
			t.Fatalf("second opening told %s, want next Monday's", got)
		}
	case err := <-done:
		t.Fatalf("UntilWindow returned %v after the window closed, want a wait for the next one", err)
	case <-limit.Done():
		t.Fatal("the next opening was never told")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for the rotation window to open at 2026-06-08T12:30:00Z") {
			t.Fatalf("UntilWindow = %v, want the cancellation naming the opening", err)
		}
	case <-limit.Done():
		t.Fatal("UntilWindow did not return after the cancellation")
	}
}
