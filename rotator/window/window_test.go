package window_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	// The tests name zones; the embedded database makes them pass on a host without one.
	_ "time/tzdata"

	"github.com/spapi-tools/lwa-rotator/rotator/window"
)

// Every expected instant below is a literal in UTC, worked out by hand (and checked with
// `TZ=… date -d`), never computed by the package.
func utc(y int, mo time.Month, d, h, mi int) time.Time {
	return time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
}

const week = 7 * 24 * time.Hour

func mustParse(t *testing.T, zone string, open ...string) window.Schedule {
	t.Helper()
	s, problems := window.Parse(zone, open, week)
	if len(problems) > 0 {
		t.Fatalf("Parse(%q, %q): %v", zone, open, problems)
	}
	return s
}

func TestParseReportsEachMistakeWithItsFieldAndNeverTheValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		zone string
		open []string
		want []window.Problem
		// secret is a piece of the input that must not appear in any message.
		secret string
	}{
		{"no zone", "", []string{"Mon 09:00-10:00"}, []window.Problem{{Field: "timeZone", Err: window.ErrZoneRequired}}, ""},
		{"unknown zone", "Mars/Olympus_Mons", []string{"Mon 09:00-10:00"}, []window.Problem{{Field: "timeZone", Err: window.ErrZone}}, "Olympus"},
		{"Local is not a zone", "Local", []string{"Mon 09:00-10:00"}, []window.Problem{{Field: "timeZone", Err: window.ErrZone}}, ""},
		{"a path is not a zone", "../../etc/passwd", []string{"Mon 09:00-10:00"}, []window.Problem{{Field: "timeZone", Err: window.ErrZone}}, "passwd"},
		{"no ranges", "UTC", nil, []window.Problem{{Field: "open", Err: window.ErrOpenRequired}}, ""},
		{"an empty list", "UTC", []string{}, []window.Problem{{Field: "open", Err: window.ErrOpenRequired}}, ""},
		{"a misspelt day", "UTC", []string{"Mon 09:00-10:00", "Sxt 09:00-10:00"}, []window.Problem{{Field: "open[1]", Err: window.ErrDay}}, "Sxt"},
		{"a misspelt day in a range", "UTC", []string{"Mon-Fir 09:00-10:00"}, []window.Problem{{Field: "open[0]", Err: window.ErrDay}}, "Fir"},
		{"an empty day in a list", "UTC", []string{"Mon,,Tue 09:00-10:00"}, []window.Problem{{Field: "open[0]", Err: window.ErrDay}}, ""},
		{"no days", "UTC", []string{"09:00-10:00"}, []window.Problem{{Field: "open[0]", Err: window.ErrShape}}, ""},
		{"no times", "UTC", []string{"Weekdays"}, []window.Problem{{Field: "open[0]", Err: window.ErrShape}}, "Weekdays"},
		{"one time", "UTC", []string{"Mon 09:00"}, []window.Problem{{Field: "open[0]", Err: window.ErrShape}}, ""},
		{"hour 25", "UTC", []string{"Mon 25:00-26:00"}, []window.Problem{{Field: "open[0]", Err: window.ErrStart}}, "25:00"},
		{"start 24:00", "UTC", []string{"Mon 24:00-02:00"}, []window.Problem{{Field: "open[0]", Err: window.ErrStart}}, "24:00"},
		{"one-digit minutes", "UTC", []string{"Mon 9:0-10:00"}, []window.Problem{{Field: "open[0]", Err: window.ErrStart}}, "9:0"},
		{"end past midnight", "UTC", []string{"Mon 09:00-24:30"}, []window.Problem{{Field: "open[0]", Err: window.ErrEnd}}, "24:30"},
		{"end minute 60", "UTC", []string{"Mon 09:00-10:60"}, []window.Problem{{Field: "open[0]", Err: window.ErrEnd}}, "10:60"},
		{"equal times", "UTC", []string{"Mon 09:00-09:00"}, []window.Problem{{Field: "open[0]", Err: window.ErrEmptyRange}}, ""},
		{"midnight to midnight", "UTC", []string{"Mon 00:00-00:00"}, []window.Problem{{Field: "open[0]", Err: window.ErrEmptyRange}}, ""},
		{"too long", "UTC", []string{"Mon 09:00-10:00" + strings.Repeat(" ", 80)}, []window.Problem{{Field: "open[0]", Err: window.ErrShape}}, ""},
		{"every problem at once", "Nowhere/Town", []string{"Mon 09:00-10:00", "Xyz 09:00-10:00", "Tue 09:00-99:00"},
			[]window.Problem{{Field: "timeZone", Err: window.ErrZone}, {Field: "open[1]", Err: window.ErrDay}, {Field: "open[2]", Err: window.ErrEnd}}, "Nowhere"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, got := window.Parse(tc.zone, tc.open, week)
			if !s.IsZero() {
				t.Errorf("a schedule with problems was built: %v", s)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("problems = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Field != tc.want[i].Field || !errors.Is(got[i].Err, tc.want[i].Err) {
					t.Errorf("problem %d = %v, want %v", i, got[i], tc.want[i])
				}
				if tc.secret != "" && strings.Contains(got[i].Error(), tc.secret) {
					t.Errorf("problem %d repeats the input: %v", i, got[i])
				}
			}
		})
	}
	if _, got := window.Parse("UTC", []string{"Mon 09:00-10:00"}, -time.Hour); len(got) != 1 || got[0].Field != "safetyMargin" {
		t.Errorf("a negative margin: problems = %v", got)
	}
}

func TestParseReadsNaturalSpellings(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"Mon-Fri 09:00-15:00":         "Mon,Tue,Wed,Thu,Fri 09:00-15:00 UTC",
		"mon-fri 9:00 - 15:00":        "Mon,Tue,Wed,Thu,Fri 09:00-15:00 UTC",
		"Saturday,Sunday 10:00–12:00": "Sat,Sun 10:00-12:00 UTC",
		"Fri-Mon 22:00-02:00":         "Mon,Fri,Sat,Sun 22:00-02:00 UTC",
		"Mon, Wed-Thu 00:00-24:00":    "Mon,Wed,Thu 00:00-24:00 UTC",
		"SUN 23:30-00:00":             "Sun 23:30-00:00 UTC",
	}
	for in, want := range tests {
		if got := mustParse(t, "UTC", in).String(); got != want {
			t.Errorf("Parse(%q) = %q, want %q", in, got, want)
		}
	}
}

type probe struct {
	name       string
	at         time.Time
	open       bool
	start, end time.Time // what Next(at) returns
}

func checkProbes(t *testing.T, s window.Schedule, probes []probe) {
	t.Helper()
	for _, p := range probes {
		if got := s.Open(p.at); got != p.open {
			t.Errorf("%s: Open(%s) = %v, want %v", p.name, p.at.Format(time.RFC3339Nano), got, p.open)
		}
		start, end, ok := s.Next(p.at)
		if !ok || !start.Equal(p.start) || !end.Equal(p.end) {
			t.Errorf("%s: Next(%s) = %s, %s, %v; want %s, %s", p.name, p.at.Format(time.RFC3339Nano),
				start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), ok, p.start.Format(time.RFC3339), p.end.Format(time.RFC3339))
		}
	}
}

func TestWeekdaysInsideOutsideAndBothEdges(t *testing.T) {
	t.Parallel()
	s := mustParse(t, "Europe/Berlin", "Mon-Fri 09:00-15:00")
	// June: CEST, UTC+2, so 09:00-15:00 is 07:00-13:00 UTC. 2025-06-16 is a Monday.
	checkProbes(t, s, []probe{
		{"start edge is inside", utc(2025, 6, 16, 7, 0), true, utc(2025, 6, 16, 7, 0), utc(2025, 6, 16, 13, 0)},
		{"a second before", utc(2025, 6, 16, 6, 59).Add(59 * time.Second), false, utc(2025, 6, 16, 7, 0), utc(2025, 6, 16, 13, 0)},
		{"midday", utc(2025, 6, 16, 10, 0), true, utc(2025, 6, 16, 10, 0), utc(2025, 6, 16, 13, 0)},
		{"a nanosecond before the end", utc(2025, 6, 16, 13, 0).Add(-1), true, utc(2025, 6, 16, 13, 0).Add(-1), utc(2025, 6, 16, 13, 0)},
		{"end edge is outside", utc(2025, 6, 16, 13, 0), false, utc(2025, 6, 17, 7, 0), utc(2025, 6, 17, 13, 0)},
		{"Friday's close waits for Monday", utc(2025, 6, 20, 13, 0), false, utc(2025, 6, 23, 7, 0), utc(2025, 6, 23, 13, 0)},
		{"Saturday 03:00", utc(2025, 6, 14, 1, 0), false, utc(2025, 6, 16, 7, 0), utc(2025, 6, 16, 13, 0)},
		// January: CET, UTC+1.
		{"winter start", utc(2025, 1, 13, 8, 0), true, utc(2025, 1, 13, 8, 0), utc(2025, 1, 13, 14, 0)},
		{"winter before", utc(2025, 1, 13, 7, 30), false, utc(2025, 1, 13, 8, 0), utc(2025, 1, 13, 14, 0)},
		// A time zone other than UTC on the caller's side changes nothing.
		{"t in another zone", time.Date(2025, 6, 16, 3, 0, 0, 0, time.FixedZone("UTC-4", -4*3600)), true,
			utc(2025, 6, 16, 7, 0), utc(2025, 6, 16, 13, 0)},
	})
}

func TestRangeCrossingMidnightBelongsToItsStartDay(t *testing.T) {
	t.Parallel()
	s := mustParse(t, "Europe/Berlin", "Fri 22:00-02:00")
	// Friday 2025-06-20 22:00 CEST is 20:00 UTC; Saturday 02:00 CEST is Saturday 00:00 UTC.
	checkProbes(t, s, []probe{
		{"Friday night", utc(2025, 6, 20, 20, 0), true, utc(2025, 6, 20, 20, 0), utc(2025, 6, 21, 0, 0)},
		{"after midnight", utc(2025, 6, 20, 23, 30), true, utc(2025, 6, 20, 23, 30), utc(2025, 6, 21, 0, 0)},
		{"closes at 02:00", utc(2025, 6, 21, 0, 0), false, utc(2025, 6, 27, 20, 0), utc(2025, 6, 28, 0, 0)},
		{"Saturday night is not Friday's", utc(2025, 6, 21, 20, 30), false, utc(2025, 6, 27, 20, 0), utc(2025, 6, 28, 0, 0)},
		{"Thursday's night is not in it", utc(2025, 6, 19, 23, 30), false, utc(2025, 6, 20, 20, 0), utc(2025, 6, 21, 0, 0)},
	})
	// Sunday into Monday wraps the week.
	sun := mustParse(t, "UTC", "Sun 23:00-01:00")
	checkProbes(t, sun, []probe{
		{"Sunday 23:30", utc(2025, 6, 22, 23, 30), true, utc(2025, 6, 22, 23, 30), utc(2025, 6, 23, 1, 0)},
		{"Monday 00:30", utc(2025, 6, 23, 0, 30), true, utc(2025, 6, 23, 0, 30), utc(2025, 6, 23, 1, 0)},
		{"Monday 01:00", utc(2025, 6, 23, 1, 0), false, utc(2025, 6, 29, 23, 0), utc(2025, 6, 30, 1, 0)},
	})
	// An end of 00:00 is the next midnight.
	eve := mustParse(t, "UTC", "Sun 23:30-00:00")
	checkProbes(t, eve, []probe{{"until midnight", utc(2025, 6, 22, 23, 45), true, utc(2025, 6, 22, 23, 45), utc(2025, 6, 23, 0, 0)}})
}

func TestOverlappingRangesAndAWholeWeek(t *testing.T) {
	t.Parallel()
	s := mustParse(t, "UTC", "Mon 09:00-12:00", "Mon 11:00-15:00", "Mon 15:00-16:00")
	checkProbes(t, s, []probe{
		{"overlapping and touching ranges make one window", utc(2025, 6, 16, 10, 0), true, utc(2025, 6, 16, 10, 0), utc(2025, 6, 16, 16, 0)},
		{"from before", utc(2025, 6, 16, 8, 0), false, utc(2025, 6, 16, 9, 0), utc(2025, 6, 16, 16, 0)},
	})
	always := mustParse(t, "Europe/Berlin", "Mon-Sun 00:00-24:00")
	checkProbes(t, always, []probe{
		{"a whole week never closes", utc(2025, 3, 30, 1, 30), true, utc(2025, 3, 30, 1, 30), time.Time{}},
	})
	checkProbes(t, window.Schedule{}, []probe{
		{"the zero Schedule is always open", utc(2025, 6, 14, 1, 0), true, utc(2025, 6, 14, 1, 0), time.Time{}},
	})
	none := window.New(time.UTC, week)
	if none.Open(utc(2025, 6, 16, 10, 0)) {
		t.Error("a schedule without ranges is open")
	}
	if _, _, ok := none.Next(utc(2025, 6, 16, 10, 0)); ok {
		t.Error("a schedule without ranges has a next window")
	}
}

func TestDaylightSavingTimeEuropeBerlin(t *testing.T) {
	t.Parallel()
	// 2025-03-30: at 01:00 UTC the clocks jump from 02:00 CET to 03:00 CEST.
	spring := mustParse(t, "Europe/Berlin", "Sun 02:30-04:00")
	checkProbes(t, spring, []probe{
		{"spring: 02:30 does not exist, so it opens at 03:00 CEST", utc(2025, 3, 29, 12, 0), false, utc(2025, 3, 30, 1, 0), utc(2025, 3, 30, 2, 0)},
		{"spring: 01:59:59 CET", utc(2025, 3, 30, 0, 59).Add(59 * time.Second), false, utc(2025, 3, 30, 1, 0), utc(2025, 3, 30, 2, 0)},
		{"spring: 03:00 CEST", utc(2025, 3, 30, 1, 0), true, utc(2025, 3, 30, 1, 0), utc(2025, 3, 30, 2, 0)},
		{"spring: 04:00 CEST", utc(2025, 3, 30, 2, 0), false, utc(2025, 4, 6, 0, 30), utc(2025, 4, 6, 2, 0)},
	})
	// A range wholly inside the skipped hour does not happen that week: a week with no window.
	lost := mustParse(t, "Europe/Berlin", "Sun 02:00-02:45")
	checkProbes(t, lost, []probe{
		{"spring: a lost week", utc(2025, 3, 29, 12, 0), false, utc(2025, 4, 6, 0, 0), utc(2025, 4, 6, 0, 45)},
		{"spring: the week before", utc(2025, 3, 22, 12, 0), false, utc(2025, 3, 23, 1, 0), utc(2025, 3, 23, 1, 45)},
	})
	// A range ending in the skipped hour ends when the clocks jump.
	night := mustParse(t, "Europe/Berlin", "Sat 23:00-02:30")
	checkProbes(t, night, []probe{
		{"spring: ends at the jump", utc(2025, 3, 29, 22, 0), true, utc(2025, 3, 29, 22, 0), utc(2025, 3, 30, 1, 0)},
	})

	// 2025-10-26: at 01:00 UTC the clocks go back from 03:00 CEST to 02:00 CET; 02:00-03:00
	// happens twice.
	fall := mustParse(t, "Europe/Berlin", "Sun 02:30-03:30")
	checkProbes(t, fall, []probe{
		{"fall: opens at the first 02:30 (CEST)", utc(2025, 10, 25, 12, 0), false, utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 2, 30)},
		{"fall: 02:29 CEST", utc(2025, 10, 26, 0, 29), false, utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 2, 30)},
		{"fall: the first 02:30", utc(2025, 10, 26, 0, 30), true, utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 2, 30)},
		{"fall: the second 02:00 (CET) is still inside", utc(2025, 10, 26, 1, 0), true, utc(2025, 10, 26, 1, 0), utc(2025, 10, 26, 2, 30)},
		{"fall: the second 02:30 does not reopen it", utc(2025, 10, 26, 1, 30), true, utc(2025, 10, 26, 1, 30), utc(2025, 10, 26, 2, 30)},
		{"fall: closes at 03:30 CET", utc(2025, 10, 26, 2, 30), false, utc(2025, 11, 2, 1, 30), utc(2025, 11, 2, 2, 30)},
	})
	// A range within the repeated hour happens on its first pass only.
	twice := mustParse(t, "Europe/Berlin", "Sun 02:15-02:45")
	checkProbes(t, twice, []probe{
		{"fall: first pass", utc(2025, 10, 26, 0, 15), true, utc(2025, 10, 26, 0, 15), utc(2025, 10, 26, 0, 45)},
		{"fall: second pass is closed", utc(2025, 10, 26, 1, 20), false, utc(2025, 11, 2, 1, 15), utc(2025, 11, 2, 1, 45)},
	})
	// A range ending in the repeated hour ends at its first occurrence.
	early := mustParse(t, "Europe/Berlin", "Sun 01:00-02:30")
	checkProbes(t, early, []probe{
		{"fall: ends at the first 02:30", utc(2025, 10, 25, 23, 0), true, utc(2025, 10, 25, 23, 0), utc(2025, 10, 26, 0, 30)},
		{"fall: the second 02:10 is closed", utc(2025, 10, 26, 1, 10), false, utc(2025, 11, 2, 0, 0), utc(2025, 11, 2, 1, 30)},
	})
}

func TestDaylightSavingTimeAmericaNewYork(t *testing.T) {
	t.Parallel()
	// 2025-03-09: at 07:00 UTC the clocks jump from 02:00 EST to 03:00 EDT.
	spring := mustParse(t, "America/New_York", "Sun 02:30-04:00")
	checkProbes(t, spring, []probe{
		{"spring: opens at 03:00 EDT", utc(2025, 3, 8, 12, 0), false, utc(2025, 3, 9, 7, 0), utc(2025, 3, 9, 8, 0)},
		{"spring: 01:59 EST", utc(2025, 3, 9, 6, 59), false, utc(2025, 3, 9, 7, 0), utc(2025, 3, 9, 8, 0)},
	})
	// 2025-11-02: at 06:00 UTC the clocks go back from 02:00 EDT to 01:00 EST.
	fall := mustParse(t, "America/New_York", "Sun 01:30-02:30")
	checkProbes(t, fall, []probe{
		{"fall: opens at the first 01:30 (EDT)", utc(2025, 11, 1, 12, 0), false, utc(2025, 11, 2, 5, 30), utc(2025, 11, 2, 7, 30)},
		{"fall: the second 01:45 (EST) is inside", utc(2025, 11, 2, 6, 45), true, utc(2025, 11, 2, 6, 45), utc(2025, 11, 2, 7, 30)},
		{"fall: closes at 02:30 EST", utc(2025, 11, 2, 7, 30), false, utc(2025, 11, 9, 6, 30), utc(2025, 11, 9, 7, 30)},
	})
	// Working hours over the spring weekend: 09:00 EST is 14:00 UTC, 09:00 EDT is 13:00 UTC.
	days := mustParse(t, "America/New_York", "Mon-Fri 09:00-15:00")
	checkProbes(t, days, []probe{
		{"Friday EST", utc(2025, 3, 7, 14, 0), true, utc(2025, 3, 7, 14, 0), utc(2025, 3, 7, 20, 0)},
		{"Monday EDT", utc(2025, 3, 7, 20, 0), false, utc(2025, 3, 10, 13, 0), utc(2025, 3, 10, 19, 0)},
	})
}

func TestASkippedDay(t *testing.T) {
	t.Parallel()
	// Samoa skipped Friday 2011-12-30: the clocks went from Thursday 23:59:59 -10 to Saturday
	// 00:00 +14. That Friday's range does not happen; the next is 2012-01-06 10:00 +14.
	s := mustParse(t, "Pacific/Apia", "Fri 10:00-12:00")
	checkProbes(t, s, []probe{
		{"the skipped Friday", utc(2011, 12, 29, 22, 0), false, utc(2012, 1, 5, 20, 0), utc(2012, 1, 5, 22, 0)},
	})
}

func TestStartAt(t *testing.T) {
	t.Parallel()
	s := mustParse(t, "Europe/Berlin", "Mon-Fri 09:00-15:00") // margin 7d
	// Saturday 2025-06-14 03:00 CEST (01:00 UTC) is when a renewal falls due; the window next
	// opens Monday 2025-06-16 09:00 CEST (07:00 UTC).
	sat, mon := utc(2025, 6, 14, 1, 0), utc(2025, 6, 16, 7, 0)
	tests := []struct {
		name             string
		s                window.Schedule
		now, due, expiry time.Time
		want             window.Decision
	}{
		{"due outside: wait for Monday", s, sat, sat, utc(2025, 7, 14, 1, 0), window.Decision{At: mon, Reason: window.WaitForWindow}},
		{"opening exactly at expiry - margin still waits", s, sat, sat, utc(2025, 6, 23, 7, 0), window.Decision{At: mon, Reason: window.WaitForWindow}},
		{"a minute less: safety override, start when due", s, sat, sat, utc(2025, 6, 23, 6, 59), window.Decision{At: sat, Reason: window.SafetyOverride}},
		{"already inside the margin", s, sat, sat, utc(2025, 6, 16, 0, 0), window.Decision{At: sat, Reason: window.SafetyOverride}},
		{"expired already", s, sat, sat, utc(2025, 6, 1, 0, 0), window.Decision{At: sat, Reason: window.SafetyOverride}},
		{"due inside", s, utc(2025, 6, 16, 8, 0), utc(2025, 6, 16, 8, 0), utc(2025, 7, 14, 0, 0), window.Decision{At: utc(2025, 6, 16, 8, 0), Reason: window.InWindow}},
		{"due later, inside", s, utc(2025, 6, 16, 6, 0), utc(2025, 6, 16, 10, 0), utc(2025, 7, 14, 0, 0), window.Decision{At: utc(2025, 6, 16, 10, 0), Reason: window.InWindow}},
		{"due later, outside", s, utc(2025, 6, 13, 10, 0), sat, utc(2025, 7, 14, 0, 0), window.Decision{At: mon, Reason: window.WaitForWindow}},
		{"overdue from inside a window that has closed since: the next one", s, utc(2025, 6, 16, 14, 0), utc(2025, 6, 16, 8, 0), utc(2025, 7, 14, 0, 0),
			window.Decision{At: utc(2025, 6, 17, 7, 0), Reason: window.WaitForWindow}},
		{"expiry unknown: no deadline", s, sat, sat, time.Time{}, window.Decision{At: mon, Reason: window.WaitForWindow}},
		{"no window", window.Schedule{}, sat, utc(2025, 6, 13, 0, 0), utc(2025, 6, 15, 0, 0), window.Decision{At: sat, Reason: window.NoWindow}},
		{"no ranges: safety override", window.New(time.UTC, week), sat, sat, utc(2025, 7, 14, 0, 0), window.Decision{At: sat, Reason: window.SafetyOverride}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.s.StartAt(tc.now, tc.due, tc.expiry)
			if !got.At.Equal(tc.want.At) || got.Reason != tc.want.Reason {
				t.Errorf("StartAt = %s %s, want %s %s", got.At.UTC().Format(time.RFC3339), got.Reason, tc.want.At.Format(time.RFC3339), tc.want.Reason)
			}
		})
	}
	// The margin is the schedule's own: a 2-day margin lets Saturday's renewal wait for Monday
	// even when the secret expires on Thursday.
	short, problems := window.Parse("Europe/Berlin", []string{"Mon-Fri 09:00-15:00"}, 48*time.Hour)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if got := short.StartAt(sat, sat, utc(2025, 6, 19, 0, 0)); !got.At.Equal(mon) || got.Reason != window.WaitForWindow {
		t.Errorf("2-day margin: StartAt = %s %s, want %s wait", got.At, got.Reason, mon)
	}
}

func TestWeekly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		open              []string
		wantOpen, wantGap time.Duration
	}{
		{[]string{"Mon-Fri 09:00-15:00"}, 30 * time.Hour, 66 * time.Hour},
		{[]string{"Fri 22:00-02:00"}, 4 * time.Hour, 164 * time.Hour},
		{[]string{"Sun 23:00-01:00"}, 2 * time.Hour, 166 * time.Hour},
		{[]string{"Mon 09:00-10:00", "Thu 09:00-10:00"}, 2 * time.Hour, 95 * time.Hour},
		{[]string{"Mon 09:00-12:00", "Mon 11:00-13:00"}, 4 * time.Hour, 164 * time.Hour},
		{[]string{"Mon-Sun 00:00-24:00"}, 168 * time.Hour, 0},
		{[]string{"Mon-Sun 00:00-23:59"}, 168*time.Hour - 7*time.Minute, time.Minute},
	}
	for _, tc := range tests {
		open, gap := mustParse(t, "Europe/Berlin", tc.open...).Weekly()
		if open != tc.wantOpen || gap != tc.wantGap {
			t.Errorf("Weekly(%q) = %s, %s; want %s, %s", tc.open, open, gap, tc.wantOpen, tc.wantGap)
		}
	}
}
