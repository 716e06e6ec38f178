// Package window holds rotation windows: weekly ranges of wall-clock time in one IANA time zone
// during which scheduled work may start. A rotation starts a clock (the secret it was called with
// dies seven days later), so starting it inside working hours makes that death happen inside
// working hours too.
//
// Everything here is pure: the functions take the instants they reason about and read no clock.
//
// Each wall-clock time of a range, start and end alike, is resolved on its own date to the
// first instant at which the zone's clock reads it, and a time the clocks skip resolves to the
// instant they jump past it. So on the spring-forward night in Europe/Berlin (02:00-03:00 does
// not exist) a range 02:30-04:00 opens at 03:00; on the fall-back night (02:00-03:00 happens
// twice) a range 02:30-03:30 opens at the first 02:30 and closes at 03:30, after the repeated
// hour, and a range 02:15-02:45 covers the first pass only. A range never opens twice on one
// date and is never lost, except one lying wholly inside a skipped hour, which does not happen
// that date.
package window

import (
	"sort"
	"time"
)

// Schedule is a rotation window: weekly ranges in one time zone, and the safety margin that
// overrides them. The zero Schedule is no window at all: always open.
type Schedule struct {
	loc    *time.Location
	ranges []Range
	margin time.Duration
	// always: the ranges cover the whole week, so the schedule never closes.
	always bool
}

// New builds a Schedule from parsed ranges (Parse checks them; New trusts them). A nil loc gives
// the zero Schedule.
func New(loc *time.Location, margin time.Duration, ranges ...Range) Schedule {
	if loc == nil {
		return Schedule{}
	}
	s := Schedule{loc: loc, ranges: append([]Range(nil), ranges...), margin: margin}
	open, _ := s.Weekly()
	s.always = open == week*time.Minute
	return s
}

// IsZero reports whether no window is configured (always open).
func (s Schedule) IsZero() bool { return s.loc == nil }

// Location is the schedule's time zone; nil for the zero Schedule.
func (s Schedule) Location() *time.Location { return s.loc }

// Margin is how close to its expiry a secret may come before scheduled work stops waiting for
// the window.
func (s Schedule) Margin() time.Duration { return s.margin }

// String writes the ranges and zone back, for logs: "Mon,Tue,Wed,Thu,Fri 09:00-15:00 Europe/Berlin".
func (s Schedule) String() string {
	if s.IsZero() {
		return "always"
	}
	out := ""
	for i, r := range s.ranges {
		if i > 0 {
			out += "; "
		}
		out += r.String()
	}
	return out + " " + s.loc.String()
}

// Open reports whether t is inside a window: from a window's start (inclusive) to its end
// (exclusive). The zero Schedule is always open.
func (s Schedule) Open(t time.Time) bool {
	start, _, ok := s.Next(t)
	return ok && start.Equal(t)
}

// Next returns the earliest instant at or after t at which the schedule is open (t itself when
// t is inside a window) and when that window closes. Ranges that overlap or touch make one
// window. end is the zero Time when the window never closes (the zero Schedule, or ranges that
// cover the whole week). ok is false only when no window opens in the weeks ahead: a schedule
// without ranges.
func (s Schedule) Next(t time.Time) (start, end time.Time, ok bool) {
	if s.IsZero() || s.always {
		return t, time.Time{}, true
	}
	for _, sp := range s.spans(t) {
		if t.Before(sp.close) {
			return latest(t, sp.open), sp.close, true
		}
	}
	return time.Time{}, time.Time{}, false
}

// Reason says why a Decision starts when it does; the values are fit for a metric label.
type Reason string

const (
	// NoWindow: no window is configured; work starts when due.
	NoWindow Reason = "no_window"
	// InWindow: work is due inside a window and starts when due.
	InWindow Reason = "in_window"
	// WaitForWindow: work is due outside the windows and starts when the next one opens, which is
	// early enough to leave the safety margin before the secret expires.
	WaitForWindow Reason = "wait_for_window"
	// SafetyOverride: waiting for the next window would leave less than the safety margin before
	// the secret expires, so work starts when due, outside the windows.
	SafetyOverride Reason = "safety_override"
)

// Decision is when scheduled work may start, and why.
type Decision struct {
	// At is the earliest instant the work may start: never before now or due. At == now means
	// start now.
	At     time.Time
	Reason Reason
}

// StartAt decides when scheduled work that falls due at due (a renewal or a canary rotation),
// seen at now, may start, given that the secret it replaces expires at expiry:
//
//   - from = the later of now and due; a due time already past counts from now, so a window
//     that opened and closed while the work was overdue is not used after the fact;
//   - the zero Schedule: At = from, NoWindow;
//   - from inside a window: At = from, InWindow;
//   - otherwise, when the next window opens no later than expiry − margin: At = that opening,
//     WaitForWindow (an opening exactly at expiry − margin still waits);
//   - otherwise (it opens later, or no window ever opens): At = from, SafetyOverride. Work that
//     cannot start in a window starts as early as it may, which leaves the most time to retry.
//
// A zero expiry (not known) sets no deadline: the work waits for the window.
//
// Only scheduled work asks: a rotation under way, a retry after a lost secret and an operator's
// request do not wait for a window.
func (s Schedule) StartAt(now, due, expiry time.Time) Decision {
	from := latest(now, due)
	if s.IsZero() {
		return Decision{At: from, Reason: NoWindow}
	}
	start, _, ok := s.Next(from)
	switch {
	case ok && start.Equal(from):
		return Decision{At: from, Reason: InWindow}
	case ok && (expiry.IsZero() || !start.After(expiry.Add(-s.margin))):
		return Decision{At: start, Reason: WaitForWindow}
	default:
		return Decision{At: from, Reason: SafetyOverride}
	}
}

const (
	day  = 24 * 60 // minutes
	week = 7 * day
)

// Weekly measures the ranges on the wall clock, ignoring daylight saving time: how long the
// schedule is open in a week, and its longest closed stretch (wrapping from Sunday to Monday).
// check-config warns with these; they are within an hour of any real week's.
func (s Schedule) Weekly() (open, longestClosed time.Duration) {
	if s.IsZero() {
		return 7 * 24 * time.Hour, 0
	}
	var minutes [week]bool
	for _, r := range s.ranges {
		length := r.end - r.start
		if length <= 0 {
			length += day
		}
		for d := range 7 {
			if !r.days[d] {
				continue
			}
			for m := range length {
				minutes[(d*day+r.start+m)%week] = true
			}
		}
	}
	n, run, longest := 0, 0, 0
	// Twice round the week, so a closed stretch over the Saturday-Sunday wrap is measured whole.
	for i := range 2 * week {
		if minutes[i%week] {
			run = 0
			if i < week {
				n++
			}
			continue
		}
		run++
		longest = max(longest, min(run, week))
	}
	return time.Duration(n) * time.Minute, time.Duration(longest) * time.Minute
}

// span is one window as instants: [open, close).
type span struct{ open, close time.Time }

// lookBack and lookAhead bound the days examined around t: a window open at t opened at most a
// day before t's date (a range crossing midnight), and any schedule with a range opens within a
// week, two when a skipped hour swallows one week's only window.
const (
	lookBack  = 2
	lookAhead = 16
)

// spans returns the windows of the days around t, sorted and merged where they overlap or touch.
func (s Schedule) spans(t time.Time) []span {
	y, m, d := t.In(s.loc).Date()
	var out []span
	for i := -lookBack; i <= lookAhead; i++ {
		// The day's midnight as a wall reading: a UTC value stands for the zone's clock face.
		date := time.Date(y, m, d+i, 0, 0, 0, 0, time.UTC)
		for _, r := range s.ranges {
			if !r.days[date.Weekday()] {
				continue
			}
			end := r.end
			if end <= r.start {
				end += day
			}
			open := instant(date.Add(time.Duration(r.start)*time.Minute), s.loc)
			close := instant(date.Add(time.Duration(end)*time.Minute), s.loc)
			if open.Before(close) {
				out = append(out, span{open, close})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].open.Before(out[j].open) })
	merged := out[:0]
	for _, sp := range out {
		if n := len(merged); n > 0 && !sp.open.After(merged[n-1].close) {
			merged[n-1].close = latest(merged[n-1].close, sp.close)
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

// instant is the first instant at which loc's clock reads wall (a wall-clock reading carried in
// a UTC time), or, when daylight saving time skips that reading, the instant the clocks jump
// past it. time.Date leaves both cases unspecified ("the choice of time zone, and therefore the
// time, is not guaranteed"), so the offsets in force around the reading are tried one by one.
func instant(wall time.Time, loc *time.Location) time.Time {
	// An instant whose clock reads wall lies within the zone's largest offsets (-12h, +14h) of
	// it; the offsets at both ends and in the middle cover any one transition in between.
	probes := [...]time.Time{wall.Add(-15 * time.Hour), wall, wall.Add(15 * time.Hour)}
	var best time.Time
	found := false
	for _, p := range probes {
		t := wall.Add(-offset(p, loc))
		if clockOf(t, loc).Equal(wall) && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	if found {
		return best
	}
	// A skipped reading: with the offset in force before the jump, wall maps to an instant after
	// it, whose zone began at the jump.
	for _, p := range probes {
		t := wall.Add(-offset(p, loc))
		if !clockOf(t, loc).After(wall) {
			continue
		}
		jump, _ := t.In(loc).ZoneBounds()
		if jump.IsZero() || clockOf(jump, loc).Before(wall) || !clockOf(jump.Add(-time.Second), loc).Before(wall) {
			continue
		}
		if !found || jump.Before(best) {
			best, found = jump, true
		}
	}
	if found {
		return best
	}
	return time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), 0, 0, loc)
}

func offset(t time.Time, loc *time.Location) time.Duration {
	_, off := t.In(loc).Zone()
	return time.Duration(off) * time.Second
}

// clockOf is what loc's clock reads at t, carried in a UTC time.
func clockOf(t time.Time, loc *time.Location) time.Time {
	return t.UTC().Add(offset(t, loc))
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
