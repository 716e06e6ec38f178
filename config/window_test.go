package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	// The tests name zones; the embedded database makes them pass on a host without one.
	_ "time/tzdata"

	"github.com/spapi-tools/lwa-rotator/config"
)

// withApps is valid with two applications, the second with a rotationWindow of its own.
const withApps = valid + `  - name: second-app
    clientId: amzn1.application-oa2-client.cccc
    region: eu
    secretId: lwa/second-app
    rotationWindow:
      timeZone: America/New_York
      open: ["Tue 10:00-16:00"]
      safetyMargin: 5d
`

func TestRotationWindowResolvedForEachApplication(t *testing.T) {
	t.Parallel()
	global := `rotationWindow:
  timeZone: Europe/Berlin
  open:
    - Mon-Fri 09:00-15:00
    - "Sat 10:00 - 12:00"
`
	tests := []struct {
		name          string
		raw           string
		first, second string
		firstMargin   time.Duration
	}{
		{"global and an override", withApps + global,
			"Mon,Tue,Wed,Thu,Fri 09:00-15:00; Sat 10:00-12:00 Europe/Berlin", "Tue 10:00-16:00 America/New_York", 7 * 24 * time.Hour},
		{"override only", withApps, "always", "Tue 10:00-16:00 America/New_York", 0},
		{"an empty block is no window", valid + "rotationWindow: {}\n", "always", "", 0},
		{"none", valid, "always", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse([]byte(tc.raw), nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := c.Applications[0].Window.String(); got != tc.first {
				t.Errorf("first application's window = %q, want %q", got, tc.first)
			}
			if got := c.Applications[0].Window.Margin(); got != tc.firstMargin {
				t.Errorf("first application's margin = %s, want %s", got, tc.firstMargin)
			}
			if tc.second == "" {
				return
			}
			if got := c.Applications[1].Window.String(); got != tc.second {
				t.Errorf("second application's window = %q, want %q", got, tc.second)
			}
			if got := c.Applications[1].Window.Margin(); got != 5*24*time.Hour {
				t.Errorf("second application's margin = %s, want 120h", got)
			}
		})
	}
	// The resolved schedule answers in its zone: Monday 2025-06-16 07:00 UTC is 09:00 in Berlin.
	c, err := config.Parse([]byte(valid+global), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Applications[0].Window.Open(time.Date(2025, 6, 16, 7, 0, 0, 0, time.UTC)) {
		t.Error("Monday 09:00 Berlin is not inside the window")
	}
	if c.Applications[0].Window.Open(time.Date(2025, 6, 16, 6, 59, 0, 0, time.UTC)) {
		t.Error("Monday 08:59 Berlin is inside the window")
	}
}

func TestRotationWindowMistakesNameTheirFieldNeverTheValue(t *testing.T) {
	t.Parallel()
	// valid ends at line 12; what is appended starts at line 13.
	tests := []struct {
		name   string
		add    string
		want   []string
		hidden []string
	}{
		{"a misspelt day", "rotationWindow:\n  timeZone: Europe/Berlin\n  open: [\"Mon 09:00-10:00\", \"Sxt 09:00-10:00\"]\n",
			[]string{"rotationWindow.open[1] (line 15): the day is not a weekday name (Mon..Sun)"}, []string{"Sxt"}},
		{"an unknown zone", "rotationWindow:\n  timeZone: Mars/Olympus_Mons\n  open: [\"Mon 09:00-10:00\"]\n",
			[]string{"rotationWindow.timeZone (line 14): not an IANA time zone name"}, []string{"Mars", "Olympus"}},
		{"no zone", "rotationWindow:\n  open: [\"Mon 09:00-10:00\"]\n",
			[]string{"rotationWindow.timeZone: required (an IANA time zone name"}, nil},
		{"a bad time", "rotationWindow:\n  timeZone: UTC\n  open:\n    - Mon 09:00-25:00\n",
			[]string{"rotationWindow.open[0] (line 16): the end time is not a time of day"}, []string{"25:00"}},
		{"a bad start", "rotationWindow:\n  timeZone: UTC\n  open:\n    - Mon 9h-10:00\n",
			[]string{"rotationWindow.open[0] (line 16): the start time is not a time of day"}, []string{"9h"}},
		{"an empty range", "rotationWindow:\n  timeZone: UTC\n  open: [\"Mon 09:00-09:00\"]\n",
			[]string{"rotationWindow.open[0] (line 15): the start and end times are equal"}, nil},
		{"not a range", "rotationWindow:\n  timeZone: UTC\n  open: [\"weekday mornings\"]\n",
			[]string{"rotationWindow.open[0] (line 15): is not days and times such as Mon-Fri 09:00-15:00"}, []string{"mornings"}},
		{"an empty open list", "rotationWindow:\n  timeZone: UTC\n  open: []\n",
			[]string{"rotationWindow.open (line 15): at least one range is required"}, nil},
		{"open is not a list", "rotationWindow:\n  timeZone: UTC\n  open: Mon-Fri 09:00-15:00\n",
			[]string{"rotationWindow.open (line 15): must be a list, not a single value"}, []string{"Mon-Fri"}},
		{"a margin too short", "rotationWindow:\n  timeZone: UTC\n  open: [\"Mon-Fri 09:00-15:00\"]\n  safetyMargin: 30m\n",
			[]string{"rotationWindow.safetyMargin (line 16): 30m0s must be between 1h and 170d"}, nil},
		{"a margin that is not a duration", "rotationWindow:\n  timeZone: UTC\n  open: [\"Mon-Fri 09:00-15:00\"]\n  safetyMargin: a week\n",
			[]string{"rotationWindow.safetyMargin (line 16): not a duration"}, []string{"a week"}},
		{"an unknown key", "rotationWindow:\n  timeZone: UTC\n  open: [\"Mon 09:00-10:00\"]\n  days: Mon\n",
			[]string{"rotationWindow.days (line 16): unknown key"}, nil},
		{"an application's mistakes", "    rotationWindow:\n      timeZone: Nowhere/Town\n      open: [\"Mon-Fir 09:00-10:00\"]\n",
			[]string{"applications[0].rotationWindow.timeZone (line 14): not an IANA time zone name",
				"applications[0].rotationWindow.open[0] (line 15): the day is not a weekday name"}, []string{"Nowhere", "Fir"}},
		{"an application's block replaces the global one whole", "    rotationWindow:\n      safetyMargin: 3d\n",
			[]string{"applications[0].rotationWindow.timeZone: required", "applications[0].rotationWindow.open: at least one range is required"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(valid+tc.add), nil)
			var ve *config.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("want *ValidationError, got %v", err)
			}
			if len(ve.Problems) != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(ve.Problems), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
			for _, h := range tc.hidden {
				if strings.Contains(err.Error(), h) {
					t.Errorf("the error repeats the value %q:\n%v", h, err)
				}
			}
		})
	}
}

func TestRotationWindowWarningsNeverRefuse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		env  map[string]string
		want []string
	}{
		{"working hours with the defaults", valid + "rotationWindow: {timeZone: Europe/Berlin, open: [\"Mon-Fri 09:00-15:00\"]}\n", nil, nil},
		{"an hour a week", valid + "rotationWindow: {timeZone: UTC, open: [\"Wed 10:00-11:00\"]}\n",
			nil, []string{"rotationWindow.open (line 13): open 1h0m0s a week in all, less than 2h0m0s"}},
		{"closed longer than renewBefore - safetyMargin", "renewBefore: 10d\n" + valid + "rotationWindow: {timeZone: UTC, open: [\"Wed 10:00-14:00\"]}\n",
			nil, []string{"rotationWindow (line 14): closed for up to 164h0m0s at a stretch, longer than renewBefore - safetyMargin (72h0m0s)"}},
		{"open all week: nothing waits, nothing to warn of", "renewBefore: 7d\n" + valid + "rotationWindow: {timeZone: UTC, open: [\"Mon-Sun 00:00-24:00\"]}\n", nil, nil},
		{"weekdays fit a 3-day slack", "renewBefore: 10d\n" + valid + "rotationWindow: {timeZone: UTC, open: [\"Mon-Fri 09:00-15:00\"]}\n", nil, nil},
		{"a margin as long as renewBefore", "renewBefore: 7d\n" + valid + "rotationWindow: {timeZone: UTC, open: [\"Mon-Fri 09:00-15:00\"]}\n",
			nil, []string{"rotationWindow.safetyMargin: 168h0m0s is not shorter than renewBefore (168h0m0s)"}},
		{"renewBefore from the environment counts", valid + "rotationWindow: {timeZone: UTC, open: [\"Mon-Fri 09:00-15:00\"], safetyMargin: 14d}\n",
			map[string]string{"LWA_ROTATOR_RENEW_BEFORE": "10d"}, []string{"rotationWindow.safetyMargin (line 13): 336h0m0s is not shorter than renewBefore (240h0m0s)"}},
		{"an application's own window", withApps + "rotationWindow: {timeZone: UTC, open: [\"Mon-Fri 09:00-15:00\"]}\n" +
			"renewBefore: 8d\n", // 3 days of slack for the override (5d margin), 1 for the global one (7d); a block mapping is reported at its first key (line 18)
			nil, []string{"rotationWindow (line 21): closed for up to 66h0m0s at a stretch, longer than renewBefore - safetyMargin (24h0m0s)",
				"applications[1].rotationWindow (line 18): closed for up to 162h0m0s at a stretch, longer than renewBefore - safetyMargin (72h0m0s)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse([]byte(tc.raw), envOf(tc.env))
			if err != nil {
				t.Fatalf("a warning refused the configuration: %v", err)
			}
			if len(c.Warnings) != len(tc.want) {
				t.Errorf("got %d warnings, want %d: %q", len(c.Warnings), len(tc.want), c.Warnings)
			}
			for _, w := range tc.want {
				if !strings.Contains(strings.Join(c.Warnings, "\n"), w) {
					t.Errorf("missing %q in %q", w, c.Warnings)
				}
			}
		})
	}
}
