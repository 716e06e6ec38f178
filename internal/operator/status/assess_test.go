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
	"github.com/spapi-tools/lwa-rotator/rotator/window"
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

// Rotation windows, by example (the rows of rotator's TestDecideWindowExamples, worked out by
// hand): Berlin is UTC+2 in June, and 2026-06-01 is a Monday.
func TestAssessWindows(t *testing.T) {
	t.Parallel()
	now := at("2026-06-01T12:00:00Z")
	berlin := func(open string) window.Schedule {
		w, problems := window.Parse("Europe/Berlin", []string{open}, 7*24*time.Hour)
		if len(problems) > 0 {
			t.Fatalf("window %q: %v", open, problems)
		}
		return w
	}
	state := func(w window.Schedule, expires string, st vault.RotationState) State {
		return State{App: rotator.App{Name: "main", ClientID: client, SecretID: "lwa/main", Window: w},
			Snapshot: vault.Snapshot{SecretID: "lwa/main", Current: current(expires), State: st}}
	}
	type want struct {
		phase, reason, next, opens, oldDies string
		outside                             bool
		// problem is a substring of the one problem ("" for none); note is one whole note.
		problem, note string
		// row is the table's row for the application, with its columns' spacing squeezed.
		row string
	}
	tests := []struct {
		name string
		s    State
		want want
	}{
		{"due outside the window waits for Tuesday 09:00 Berlin",
			state(berlin("Tue-Fri 09:00-15:00"), "2026-07-01T12:00:00Z", vault.RotationState{}),
			want{phase: "idle", reason: "window-wait", next: "2026-06-02T07:00:00Z", opens: "2026-06-02T07:00:00Z", oldDies: "2026-06-09T07:00:00Z",
				note: "the rotation window (Tue,Wed,Thu,Fri 09:00-15:00 Europe/Berlin) opens at 2026-06-02T07:00:00Z: the daemon calls rotate then, and the current secret then stops working at 2026-06-09T07:00:00Z",
				row:  "main ok idle window-wait 2026-06-02 07:00Z 2026-06-02 07:00Z 2026-06-09 07:00Z 2026-07-01 12:00Z - - 0 - no"}},
		// docs/operations.md's example, "Where the wait shows".
		{"the documented example: due Monday 14:00 Berlin, the window opens Tuesday 10:00 Berlin",
			state(berlin("Tue-Thu 10:00-12:00"), "2026-07-01T12:00:00Z", vault.RotationState{}),
			want{phase: "idle", reason: "window-wait", next: "2026-06-02T08:00:00Z", opens: "2026-06-02T08:00:00Z", oldDies: "2026-06-09T08:00:00Z",
				note: "the rotation window (Tue,Wed,Thu 10:00-12:00 Europe/Berlin) opens at 2026-06-02T08:00:00Z: the daemon calls rotate then, and the current secret then stops working at 2026-06-09T08:00:00Z",
				row:  "main ok idle window-wait 2026-06-02 08:00Z 2026-06-02 08:00Z 2026-06-09 08:00Z 2026-07-01 12:00Z - - 0 - no"}},
		{"the documented example, expiring Friday: the override",
			state(berlin("Tue-Thu 10:00-12:00"), "2026-06-05T12:00:00Z", vault.RotationState{}),
			want{phase: "due", reason: "renewal-due", next: "2026-06-01T12:00:00Z", oldDies: "2026-06-05T12:00:00Z", outside: true,
				problem: "inside renewBefore",
				note:    "the daemon rotates outside the rotation window (Tue,Wed,Thu 10:00-12:00 Europe/Berlin): waiting for it would leave less than its safety margin (7d) before the current secret expires at 2026-06-05T12:00:00Z",
				row:     "main ATTENTION due renewal-due 2026-06-01 12:00Z - 2026-06-05 12:00Z 2026-06-05 12:00Z - - 0 - no"}},
		// The renewal time, Tuesday 14:00 Berlin, is outside Wed-Fri; the window opens Wednesday
		// 09:00 Berlin, and an earlier failure's next attempt an hour later holds the call.
		{"a backoff later than the opening holds the call",
			state(berlin("Wed-Fri 09:00-15:00"), "2026-07-02T12:00:00Z", vault.RotationState{Attempts: 1, NextAttemptAt: at("2026-06-03T08:00:00Z")}),
			want{phase: "idle", reason: "window-wait", next: "2026-06-03T08:00:00Z", opens: "2026-06-03T07:00:00Z", oldDies: "2026-06-10T08:00:00Z",
				note: "the rotation window (Wed,Thu,Fri 09:00-15:00 Europe/Berlin) opens at 2026-06-03T07:00:00Z: the daemon calls rotate at 2026-06-03T08:00:00Z, and the current secret then stops working at 2026-06-10T08:00:00Z",
				row:  "main ok idle window-wait 2026-06-03 08:00Z 2026-06-03 07:00Z 2026-06-10 08:00Z 2026-07-02 12:00Z - - 1 - no"}},
		{"due inside the window starts now: no opening to wait for",
			state(berlin("Mon-Fri 09:00-15:00"), "2026-07-01T12:00:00Z", vault.RotationState{}),
			want{phase: "due", reason: "renewal-due", next: "2026-06-01T12:00:00Z", oldDies: "2026-06-08T12:00:00Z",
				problem: "inside renewBefore", note: "the daemon calls rotate at its next pass (2026-06-01T12:00:00Z)",
				row: "main ATTENTION due renewal-due 2026-06-01 12:00Z - 2026-06-08 12:00Z 2026-07-01 12:00Z - - 0 - no"}},
		// Tuesday 09:00 Berlin is past the expiry minus the 7-day margin (May 29): rotate now,
		// outside; the old secret dies at its own expiry, sooner than seven days after the call.
		{"safety: the next opening is past expiry minus the margin, so it rotates now, outside",
			state(berlin("Tue-Fri 09:00-15:00"), "2026-06-05T12:00:00Z", vault.RotationState{}),
			want{phase: "due", reason: "renewal-due", next: "2026-06-01T12:00:00Z", oldDies: "2026-06-05T12:00:00Z", outside: true,
				problem: "inside renewBefore",
				note:    "the daemon rotates outside the rotation window (Tue,Wed,Thu,Fri 09:00-15:00 Europe/Berlin): waiting for it would leave less than its safety margin (7d) before the current secret expires at 2026-06-05T12:00:00Z",
				row:     "main ATTENTION due renewal-due 2026-06-01 12:00Z - 2026-06-05 12:00Z 2026-06-05 12:00Z - - 0 - no"}},
		{"an operator's request does not wait",
			state(berlin("Tue-Fri 09:00-15:00"), "2026-09-01T12:00:00Z", vault.RotationState{Request: vault.RotationRequest{At: at("2026-06-01T11:55:00Z"), By: "ops"}}),
			want{phase: "due", reason: "operator-request", next: "2026-06-01T12:00:00Z", oldDies: "2026-06-08T12:00:00Z",
				note: "the daemon calls rotate at its next pass (2026-06-01T12:00:00Z)",
				row:  "main ok due operator-request 2026-06-01 12:00Z - 2026-06-08 12:00Z 2026-09-01 12:00Z - - 0 - yes"}},
		{"a staged secret plans no rotate call: no old secret's death",
			func() State {
				s := state(berlin("Tue-Fri 09:00-15:00"), "2026-07-01T12:00:00Z", vault.RotationState{})
				s.Snapshot.Pending = &vault.Version{ID: "v-pending", Record: vault.Record{ClientID: client, ExpiresAt: at("2026-11-28T12:00:00Z")}}
				return s
			}(),
			want{phase: "pending", reason: "new-secret-staged", next: "2026-06-01T12:00:02.5Z",
				note: "the daemon settles the staged version at its next pass (2026-06-01T12:00:02.5Z)",
				row:  "main ok pending new-secret-staged 2026-06-01 12:00Z - - 2026-07-01 12:00Z - - 0 v-pending no"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Build([]State{tc.s}, set, now)
			a, w := r.Applications[0], tc.want
			if a.Phase != w.phase || a.Reason != w.reason || a.NextActionAt != w.next || a.WindowOpensAt != w.opens ||
				a.OldSecretDiesAt != w.oldDies || a.OutsideWindow != w.outside {
				t.Errorf("phase %q reason %q next %q windowOpensAt %q oldSecretDiesAt %q outsideWindow %v;\nwant  %q %q %q %q %q %v",
					a.Phase, a.Reason, a.NextActionAt, a.WindowOpensAt, a.OldSecretDiesAt, a.OutsideWindow, w.phase, w.reason, w.next, w.opens, w.oldDies, w.outside)
			}
			switch {
			case w.problem == "" && a.Attention:
				t.Errorf("problems %q; want none", a.Problems)
			case w.problem != "" && (len(a.Problems) != 1 || !strings.Contains(a.Problems[0], w.problem)):
				t.Errorf("problems %q; want one containing %q", a.Problems, w.problem)
			}
			if !slices.Contains(a.Notes, w.note) {
				t.Errorf("notes %q lack %q", a.Notes, w.note)
			}
			var js, table strings.Builder
			if err := WriteJSON(&js, r); err != nil {
				t.Fatal(err)
			}
			for field, v := range map[string]string{"windowOpensAt": w.opens, "oldSecretDiesAt": w.oldDies} {
				if got := strings.Contains(js.String(), `"`+field+`": "`+v+`"`); got != (v != "") || (v == "" && strings.Contains(js.String(), `"`+field+`"`)) {
					t.Errorf("JSON %s: want %q:\n%s", field, v, js.String())
				}
			}
			if want := fmt.Sprintf(`"outsideWindow": %v`, w.outside); !strings.Contains(js.String(), want) {
				t.Errorf("JSON lacks %s:\n%s", want, js.String())
			}
			if err := WriteTable(&table, r); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(table.String(), "\n")
			const header = "APPLICATION STATE PHASE REASON NEXT ACTION WINDOW OPENS OLD SECRET DIES CURRENT EXPIRES PREVIOUS EXPIRES IN FLIGHT SINCE ATTEMPTS PENDING REQUESTED"
			if head := strings.Join(strings.Fields(lines[0]), " "); head != header {
				t.Errorf("table header %q", lines[0])
			}
			if got := strings.Join(strings.Fields(lines[1]), " "); got != w.row {
				t.Errorf("table row\n%s\nwant\n%s", got, w.row)
			}
			if !strings.Contains(table.String(), "main: "+w.note+"\n") {
				t.Errorf("table lacks the note %q:\n%s", w.note, table.String())
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

// A replica's claim on the due rotation and a replica's word that it holds the new secret show
// in status as what the daemon waits for, with the replica's name and when its word lapses.
func TestReportNamesTheReplicaTheDaemonWaitsFor(t *testing.T) {
	t.Parallel()
	now := at("2026-06-01T12:00:00Z")
	due := vault.Snapshot{ReadAt: now, Current: current("2026-06-20T12:00:00Z")}
	claimed := due
	claimed.Claim = &vault.Claim{VersionID: "c-x", Holder: "pod-b/1a2b3c4d", ClaimedAt: at("2026-06-01T11:59:30Z"), Until: at("2026-06-01T12:04:30Z")}
	inHand := due
	inHand.State.InHand = vault.Lease{Until: at("2026-06-01T12:10:00Z"), By: "pod-c/5e6f7a8b"}
	for _, tc := range []struct {
		name string
		snap vault.Snapshot
		want []string
	}{
		{"claimed", claimed, []string{`"phase": "requested"`, `"reason": "claimed-by-replica"`, `"nextActionAt": "2026-06-01T12:04:30Z"`,
			`"heldBy": "pod-b/1a2b3c4d"`, `"heldUntil": "2026-06-01T12:04:30Z"`,
			"replica pod-b/1a2b3c4d holds the claim on this rotation until 2026-06-01T12:04:30Z"}},
		{"secret in hand", inHand, []string{`"phase": "requested"`, `"reason": "secret-in-hand"`, `"nextActionAt": "2026-06-01T12:10:00Z"`,
			`"heldBy": "pod-c/5e6f7a8b"`, `"heldUntil": "2026-06-01T12:10:00Z"`}},
	} {
		r := Build([]State{{App: rotator.App{Name: "main", ClientID: client, SecretID: "lwa/main"}, Snapshot: tc.snap}}, set, now)
		var b strings.Builder
		if err := WriteJSON(&b, r); err != nil {
			t.Fatal(err)
		}
		for _, want := range tc.want {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s: JSON lacks %s:\n%s", tc.name, want, b.String())
			}
		}
	}
}
