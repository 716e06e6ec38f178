package status

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

// The settings of rotator/decision_examples_test.go, whose rows work out the literal times
// below by hand.
var set = rotator.Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
	ProbeEvery: 24 * time.Hour, CanaryEvery: 7 * 24 * time.Hour, RotateInterval: time.Minute}

const client = "amzn1.application-oa2-client.status"

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func current(expires string) vault.Version {
	v := vault.Version{ID: "v-current", Record: vault.Record{ClientID: client, ClientSecret: secret.New("cur")}}
	if expires != "" {
		v.Record.ExpiresAt = at(expires)
	}
	return v
}

func TestAssess(t *testing.T) {
	t.Parallel()
	now := at("2026-06-01T12:00:00Z")
	app := rotator.App{Name: "main", ClientID: client, SecretID: "lwa/main"}
	canary := app
	canary.Canary = true
	state := func(expires string, st vault.RotationState) State {
		return State{App: app, Snapshot: vault.Snapshot{SecretID: "lwa/main", Current: current(expires), State: st}}
	}
	staged := state("2026-09-01T12:00:00Z", vault.RotationState{})
	staged.Snapshot.Pending = &vault.Version{ID: "v-pending", Record: vault.Record{ClientID: client, ExpiresAt: at("2026-11-28T12:00:00Z")}}
	canaryState := state("2026-11-22T12:00:00Z", vault.RotationState{})
	canaryState.App = canary
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}
	tests := []struct {
		name   string
		s      State
		phase  string
		reason string
		next   string // nextActionAt, "" for none
		// problem is a substring of the one problem ("" for none); note of some note.
		problem, note string
	}{
		{name: "idle until the renewal time", s: state("2026-09-01T12:00:00Z", vault.RotationState{}),
			phase: "idle", reason: "renewal-scheduled", next: "2026-08-02T12:00:00Z", note: "the daemon rotates at 2026-08-02T12:00:00Z"},
		{name: "due: inside renewBefore and nothing in flight", s: state("2026-07-01T12:00:00Z", vault.RotationState{}),
			phase: "due", reason: "renewal-due", next: "2026-06-01T12:00:00Z", problem: "expires at 2026-07-01T12:00:00Z, inside renewBefore (30d), and no rotation is in flight"},
		{name: "due, backing off after a failed attempt", s: state("2026-06-20T00:00:00Z", vault.RotationState{Attempts: 1, NextAttemptAt: at("2026-06-01T12:05:00Z")}),
			phase: "backing_off", reason: "renewal-due", next: "2026-06-01T12:05:00Z", problem: "inside renewBefore", note: "1 failed rotation attempt(s)"},
		// Await deadline 12:30; the watchdog's retry a backoff later: 30 s plus the jitter of
		// "r1/1" (0.0527037…) times 30 s (see the example rows in rotator).
		{name: "requested: the watchdog's retry is next",
			s:     state("2026-09-01T12:00:00Z", vault.RotationState{RequestedAt: at("2026-06-01T11:30:00Z"), LastCallAt: at("2026-06-01T11:30:00Z"), RotationID: "r1"}),
			phase: "requested", reason: "awaiting-secret", next: "2026-06-01T12:30:31.581112375Z",
			note: "the new secret is awaited until 2026-06-01T12:30:00Z; if none arrives the daemon calls rotate again at 2026-06-01T12:30:31.581112375Z"},
		{name: "overdue: the deadline passed and the daemon did not ask again",
			s:     state("2026-09-01T12:00:00Z", vault.RotationState{RequestedAt: at("2026-06-01T10:30:00Z"), LastCallAt: at("2026-06-01T10:30:00Z"), RotationID: "r1"}),
			phase: "overdue", reason: "secret-owed", next: "2026-06-01T12:00:31.581112375Z",
			problem: "the rotate call of 2026-06-01T10:30:00Z got no new secret by its await deadline 2026-06-01T11:30:00Z (awaitDeadline 1h)"},
		{name: "backing off after a lost secret",
			s:     state("2026-09-01T12:00:00Z", vault.RotationState{LastCallAt: at("2026-06-01T10:00:00Z"), Attempts: 1, NextAttemptAt: at("2026-06-01T12:10:00Z"), RotationID: "r1"}),
			phase: "backing_off", reason: "secret-owed", next: "2026-06-01T12:10:00Z",
			problem: "the new secret of the latest rotate call (2026-06-01T10:00:00Z) never arrived, and the current secret expires at 2026-09-01T12:00:00Z"},
		{name: "a newer secret staged", s: staged,
			phase: "pending", reason: "new-secret-staged", next: "2026-06-01T12:00:02.5Z", note: "version v-pending is staged as AWSPENDING"},
		{name: "a canary minted six days ago", s: canaryState,
			phase: "idle", reason: "canary-scheduled", next: "2026-06-02T12:00:00Z", note: "canary: waiting for its next scheduled rotation"},
		{name: "an operator's request", s: state("2026-09-01T12:00:00Z", vault.RotationState{Request: vault.RotationRequest{At: at("2026-06-01T11:55:00Z"), By: "ops@bastion"}}),
			phase: "due", reason: "operator-request", next: "2026-06-01T12:00:00Z", note: "requested at 2026-06-01T11:55:00Z by ops@bastion and waits for the daemon"},
		{name: "an unreadable request tag", s: state("2026-09-01T12:00:00Z", vault.RotationState{Request: vault.RotationRequest{Invalid: true}}),
			phase: "idle", reason: "renewal-scheduled", next: "2026-08-02T12:00:00Z", note: "not an RFC 3339 time"},
		{name: "expiry unknown", s: state("", vault.RotationState{}),
			phase: "idle", reason: "expiry-unknown", note: "the current secret's expiry is unknown"},
		{name: "an earlier expiry notice makes it due", s: state("2026-09-01T12:00:00Z", vault.RotationState{NoticedExpiry: at("2026-06-20T00:00:00Z")}),
			phase: "due", reason: "renewal-due", next: "2026-06-01T12:00:00Z", problem: "expires at 2026-06-20T00:00:00Z"},
		{name: "expired", s: state("2026-06-01T11:59:00Z", vault.RotationState{}),
			phase: "due", reason: "renewal-due", next: "2026-06-01T12:00:00Z", problem: "the current secret expired at 2026-06-01T11:59:00Z"},
		{name: "unreadable", s: State{App: app, ReadErr: fmt.Errorf("reading secret lwa/main: %w", denied)},
			phase: "unknown", problem: "cannot read the secret: reading secret lwa/main: api error AccessDeniedException"},
		{name: "no AWSCURRENT", s: State{App: app, ReadErr: fmt.Errorf("reading: %w", vault.ErrNoCurrent)},
			phase: "unknown", problem: "store the first one with `lwa-rotator seed --app main`"},
		{name: "no secret", s: State{App: app, ReadErr: fmt.Errorf("reading: %w", vault.ErrNotFound)},
			phase: "unknown", problem: "secret lwa/main does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Build([]State{tc.s}, set, now)
			line := r.Applications[0]
			if line.Phase != tc.phase || line.Reason != tc.reason || line.NextActionAt != tc.next || line.NextRotationAt != tc.next {
				t.Errorf("phase %q reason %q nextActionAt %q nextRotationAt %q; want %q %q %q", line.Phase, line.Reason,
					line.NextActionAt, line.NextRotationAt, tc.phase, tc.reason, tc.next)
			}
			switch {
			case tc.problem == "" && (line.Attention || len(line.Problems) > 0):
				t.Errorf("attention %v, problems %q; want none", line.Attention, line.Problems)
			case tc.problem != "" && (!line.Attention || !r.Attention || len(line.Problems) != 1 || !strings.Contains(line.Problems[0], tc.problem)):
				t.Errorf("attention %v, problems %q; want one containing %q", line.Attention, line.Problems, tc.problem)
			}
			if tc.note != "" && !slices.ContainsFunc(line.Notes, func(n string) bool { return strings.Contains(n, tc.note) }) {
				t.Errorf("notes %q lack %q", line.Notes, tc.note)
			}
			if a := Assess(tc.s, set, now); a.Attention != (a.Action != "") {
				t.Errorf("attention %v with action %q: every problem says what to do", a.Attention, a.Action)
			}
			if r2 := Build([]State{tc.s}, set, now); !slices.Equal(line.Problems, r2.Applications[0].Problems) || !slices.Equal(line.Notes, r2.Applications[0].Notes) {
				t.Errorf("not a pure function: %+v then %+v", line, r2.Applications[0])
			}
		})
	}
}

// status reports the very decision the daemon's scheduler makes on the same read.
func TestAssessIsTheDaemonsDecision(t *testing.T) {
	t.Parallel()
	now := at("2026-06-01T12:00:00Z")
	s := State{App: rotator.App{Name: "main", ClientID: client}, Snapshot: vault.Snapshot{Current: current("2026-06-20T00:00:00Z"),
		State: vault.RotationState{LastCallAt: at("2026-06-01T11:59:30Z")}}}
	want := rotator.Decide(rotator.Input{App: s.App, Snapshot: s.Snapshot}, set, now)
	if got := Assess(s, set, now).Decision; got != want {
		t.Fatalf("Assess decided %+v, the daemon %+v", got, want)
	}
}

func TestHumanDurations(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{30 * 24 * time.Hour: "30d", time.Hour: "1h", 90 * time.Minute: "1h30m", 2 * time.Minute: "2m", 90 * time.Second: "1m30s", 5 * time.Second: "5s"} {
		if got := human(d); got != want {
			t.Errorf("human(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestReportJSONNamesAndTimes(t *testing.T) {
	t.Parallel()
	now := at("2026-06-01T12:00:00Z")
	s := State{App: rotator.App{Name: "main", ClientID: client, SecretID: "lwa/main"}, Snapshot: vault.Snapshot{Current: current("2026-09-01T12:00:00Z"),
		State: vault.RotationState{RequestedAt: at("2026-06-01T11:59:00Z"), LastCallAt: at("2026-06-01T11:59:00Z"), RotationID: "r1",
			Request: vault.RotationRequest{At: at("2026-06-01T11:58:00Z"), By: "ops"}, ServedRequest: at("2026-06-01T11:58:00Z")}}}
	r := Build([]State{s}, set, now)
	var b strings.Builder
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	// The watchdog's retry after the await deadline 12:59: 30 s plus the jitter of "r1/1" (0.0527037…) times 30 s.
	for _, want := range []string{`"checkedAt": "2026-06-01T12:00:00Z"`, `"attention": false`, `"name": "main"`,
		`"phase": "requested"`, `"reason": "awaiting-secret"`, `"nextActionAt": "2026-06-01T12:59:31.581112375Z"`,
		`"nextRotationAt": "2026-06-01T12:59:31.581112375Z"`, `"currentExpiresAt": "2026-09-01T12:00:00Z"`,
		`"currentMintedAt": "2026-03-05T12:00:00Z"`, `"inFlight": true`, `"inFlightSince": "2026-06-01T11:59:00Z"`,
		`"requestPending": false`, `"requestedBy": "ops"`, `"problems": []`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b.String())
		}
	}
	for _, gone := range []string{"previousExpiresAt", "currentStoredAt", "cur"} {
		if strings.Contains(b.String(), `"`+gone+`"`) {
			t.Errorf("JSON has %q:\n%s", gone, b.String())
		}
	}
	b.Reset()
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PHASE", "requested", "awaiting-secret", "2026-06-01 12:59Z", "2026-09-01 12:00Z"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// ReadAll reads with the daemon's own read: one DescribeSecret and one GetSecretValue for a
// secret with nothing staged, and says which secret is missing or has no AWSCURRENT.
func TestReadAllUsesTheDaemonsRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sm := fakesm.New(fakesm.Options{})
	body, err := vault.Encode(vault.Record{ClientID: client, ClientSecret: secret.New("amzn1.oa2-cs.v1.s3cr3t"), ExpiresAt: at("2026-09-01T12:00:00Z")}, vault.FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("lwa/main"), SecretString: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("lwa/empty")}); err != nil {
		t.Fatal(err)
	}
	sm.ResetCalls()
	apps := []rotator.App{{Name: "main", ClientID: client, SecretID: "lwa/main"}, {Name: "empty", SecretID: "lwa/empty"}, {Name: "gone", SecretID: "lwa/gone"}}
	states := ReadAll(ctx, &vault.Store{SM: sm}, apps)
	if states[0].ReadErr != nil || !states[0].Snapshot.Current.Record.ExpiresAt.Equal(at("2026-09-01T12:00:00Z")) {
		t.Errorf("main: %v, expiry %v", states[0].ReadErr, states[0].Snapshot.Current.Record.ExpiresAt)
	}
	if !errors.Is(states[1].ReadErr, vault.ErrNoCurrent) || !errors.Is(states[2].ReadErr, vault.ErrNotFound) {
		t.Errorf("empty: %v; gone: %v", states[1].ReadErr, states[2].ReadErr)
	}
	if d, g := sm.Count(fakesm.OpDescribeSecret), sm.Count(fakesm.OpGetSecretValue); d != 3 || g != 1 {
		t.Errorf("%d DescribeSecret and %d GetSecretValue, want 3 and 1", d, g)
	}
	r := Build(states, set, at("2026-06-01T12:00:00Z"))
	if !r.Attention || r.Applications[0].Attention || !r.Applications[1].Attention || !r.Applications[2].Attention {
		t.Errorf("attention: report %v, lines %v %v %v", r.Attention, r.Applications[0].Attention, r.Applications[1].Attention, r.Applications[2].Attention)
	}
	var b strings.Builder
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "s3cr3t") {
		t.Errorf("the report shows the secret:\n%s", b.String())
	}
}
