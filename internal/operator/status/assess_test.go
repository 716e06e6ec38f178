package status

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault"
)

func TestAssess(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	set := Settings{RenewBefore: 30 * day, AwaitDeadline: time.Hour}
	app := App{Name: "main", SecretID: "lwa/main"}
	healthy := State{App: app, CurrentVersionID: "v1", CurrentExpiry: now.Add(100 * day), PreviousExpiry: now.Add(-70 * day)}
	with := func(f func(*State)) State {
		s := healthy
		f(&s)
		return s
	}
	tests := []struct {
		name      string
		s         State
		attention bool
		problem   string // a substring of the one problem, "" for none
		note      string // a substring of some note
		next      time.Time
		inFlight  bool
	}{
		{name: "healthy", s: healthy, next: now.Add(70 * day)},
		{name: "unreadable", s: State{App: app, ReadErr: errors.New("AccessDeniedException")}, attention: true, problem: "cannot read the secret: AccessDeniedException"},
		{name: "no current version", s: State{App: app, NoCurrent: true}, attention: true, problem: "lwa-rotator seed --app main"},
		{name: "inside renewBefore, nothing in flight", s: with(func(s *State) { s.CurrentExpiry = now.Add(20 * day) }),
			attention: true, problem: "inside renewBefore (30d), and no rotation is in flight", next: now.Add(-10 * day)},
		{name: "inside renewBefore, in flight within the deadline",
			s: with(func(s *State) {
				s.CurrentExpiry = now.Add(20 * day)
				s.Rotation.RequestedAt = now.Add(-10 * time.Minute)
			}),
			note: "a rotation is in flight since 2026-06-01T11:50:00Z", inFlight: true},
		{name: "in flight past awaitDeadline",
			s: with(func(s *State) {
				s.CurrentExpiry = now.Add(20 * day)
				s.Rotation.RequestedAt = now.Add(-61 * time.Minute)
			}),
			attention: true, problem: "past awaitDeadline (1h)", inFlight: true},
		{name: "inside renewBefore, new secret pending verification",
			s: with(func(s *State) {
				s.CurrentExpiry = now.Add(20 * day)
				s.PendingVersionID = "v2"
			}),
			note: "version v2", next: now.Add(-10 * day)},
		{name: "an earlier expiry notice counts", s: with(func(s *State) { s.Rotation.NoticedExpiry = now.Add(10 * day) }),
			attention: true, problem: "expires at 2026-06-11T12:00:00Z", next: now.Add(-20 * day)},
		{name: "expired", s: with(func(s *State) { s.CurrentExpiry = now.Add(-time.Minute) }), attention: true, problem: "expired at",
			next: now.Add(-time.Minute - 30*day)},
		{name: "unknown expiry", s: with(func(s *State) { s.CurrentExpiry = time.Time{} }), note: "expiry is unknown"},
		{name: "failed attempts back off",
			s: with(func(s *State) {
				s.CurrentExpiry = now.Add(20 * day)
				s.Rotation.Attempts, s.Rotation.NextAttemptAt = 2, now.Add(time.Hour)
			}),
			attention: true, problem: "no rotation is in flight", note: "2 failed rotation attempt(s)", next: now.Add(time.Hour)},
		{name: "requested rotation pending",
			s: with(func(s *State) {
				s.Rotation.Request = vault.RotationRequest{At: now.Add(-time.Minute), By: "ops@bastion"}
			}),
			note: "requested at 2026-06-01T11:59:00Z by ops@bastion", next: now.Add(70 * day)},
		{name: "unreadable request tag",
			s:    with(func(s *State) { s.Rotation.Request = vault.RotationRequest{Invalid: true} }),
			note: "not an RFC 3339 time", next: now.Add(70 * day)},
		{name: "served request is not shown as pending",
			s: with(func(s *State) {
				s.Rotation.Request = vault.RotationRequest{At: now.Add(-time.Minute)}
				s.Rotation.ServedRequest = now.Add(-time.Minute)
				s.Rotation.RequestedAt = now.Add(-time.Minute)
			}),
			note: "in flight", inFlight: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := Assess(tc.s, set, now)
			if a.Attention != tc.attention {
				t.Errorf("Attention = %v, want %v (problems %q)", a.Attention, tc.attention, a.Problems)
			}
			switch {
			case tc.problem == "" && len(a.Problems) > 0:
				t.Errorf("problems %q, want none", a.Problems)
			case tc.problem != "" && (len(a.Problems) != 1 || !strings.Contains(a.Problems[0], tc.problem)):
				t.Errorf("problems %q, want one containing %q", a.Problems, tc.problem)
			}
			if tc.note != "" && !slices.ContainsFunc(a.Notes, func(n string) bool { return strings.Contains(n, tc.note) }) {
				t.Errorf("notes %q lack %q", a.Notes, tc.note)
			}
			if !a.NextRotation.Equal(tc.next) {
				t.Errorf("NextRotation = %v, want %v", a.NextRotation, tc.next)
			}
			if a.InFlight != tc.inFlight {
				t.Errorf("InFlight = %v, want %v", a.InFlight, tc.inFlight)
			}
			if a2 := Assess(tc.s, set, now); !slices.Equal(a.Problems, a2.Problems) || !slices.Equal(a.Notes, a2.Notes) {
				t.Errorf("not a pure function: %+v then %+v", a, a2)
			}
		})
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
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := State{App: App{Name: "main", SecretID: "lwa/main"}, CurrentVersionID: "v1", CurrentExpiry: now.Add(time.Hour),
		Rotation: vault.RotationState{RequestedAt: now.Add(-time.Minute), Request: vault.RotationRequest{At: now.Add(-2 * time.Minute), By: "ops"}}}
	r := Build([]State{s}, Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour}, now)
	var b strings.Builder
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"checkedAt": "2026-06-01T12:00:00Z"`, `"attention": false`, `"name": "main"`,
		`"currentExpiresAt": "2026-06-01T13:00:00Z"`, `"inFlight": true`, `"inFlightSince": "2026-06-01T11:59:00Z"`,
		`"requestPending": true`, `"requestedBy": "ops"`, `"problems": []`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "previousExpiresAt") {
		t.Errorf("an unknown time is printed instead of left out:\n%s", b.String())
	}
	b.Reset()
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "main") || !strings.Contains(b.String(), "2026-06-01 13:00Z") {
		t.Errorf("table:\n%s", b.String())
	}
}
