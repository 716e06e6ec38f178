package window

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The problems Parse reports. None repeats the text it was given: a configuration value may be
// anything a user pasted, a client secret included.
var (
	ErrZoneRequired   = errors.New("required (an IANA time zone name such as Europe/Berlin, or UTC)")
	ErrZone           = errors.New("not an IANA time zone name (such as Europe/Berlin, or UTC)")
	ErrOpenRequired   = errors.New("at least one range is required (such as Mon-Fri 09:00-15:00)")
	ErrShape          = errors.New("is not days and times such as Mon-Fri 09:00-15:00")
	ErrDay            = errors.New("the day is not a weekday name (Mon..Sun)")
	ErrStart          = errors.New("the start time is not a time of day (HH:MM, 00:00 to 23:59)")
	ErrEnd            = errors.New("the end time is not a time of day (HH:MM, 00:00 to 24:00)")
	ErrEmptyRange     = errors.New("the start and end times are equal (a whole day is 00:00-24:00)")
	ErrNegativeMargin = errors.New("the safety margin cannot be negative")
)

// Problem is one mistake Parse found: Field is "timeZone", "open" or "open[N]", the key the
// configuration file uses, so the caller can prefix its own path.
type Problem struct {
	Field string
	Err   error
}

func (p Problem) Error() string { return p.Field + ": " + p.Err.Error() }

// maxRangeLen bounds what is examined of one range; no valid range comes near it.
const maxRangeLen = 80

// Parse builds a Schedule from an IANA time zone name, one or more ranges and the safety margin,
// and reports every problem, each naming its field. A schedule needs a zone and at least one
// range: a window that never opens would hold every scheduled rotation until the safety margin.
//
// A range is days, then a start and an end time: "Mon-Fri 09:00-15:00", "Sat,Sun 10:00-12:00",
// "Fri 22:00-02:00". Days are three-letter or full English names in any case, joined by commas,
// and a day range may wrap over the weekend ("Fri-Mon"). Times are HH:MM on a 24-hour clock; the
// end may be 24:00. An end at or before the start crosses midnight: the range belongs to its
// start day and closes the next day. Spaces around the dashes are allowed, and so is an en dash.
func Parse(zone string, open []string, margin time.Duration) (Schedule, []Problem) {
	var problems []Problem
	var loc *time.Location
	switch zone {
	case "":
		problems = append(problems, Problem{"timeZone", ErrZoneRequired})
	default:
		var err error
		if loc, err = loadZone(zone); err != nil {
			problems = append(problems, Problem{"timeZone", err})
		}
	}
	if len(open) == 0 {
		problems = append(problems, Problem{"open", ErrOpenRequired})
	}
	ranges := make([]Range, 0, len(open))
	for i, s := range open {
		r, err := ParseRange(s)
		if err != nil {
			problems = append(problems, Problem{fmt.Sprintf("open[%d]", i), err})
			continue
		}
		ranges = append(ranges, r)
	}
	if margin < 0 {
		problems = append(problems, Problem{"safetyMargin", ErrNegativeMargin})
	}
	if len(problems) > 0 {
		return Schedule{}, problems
	}
	return New(loc, margin, ranges...), nil
}

// loadZone loads an IANA zone. "Local" is refused: it is whatever the host says (UTC in the
// container image), not a place. time.LoadLocation's error quotes the name, so it is replaced.
func loadZone(name string) (*time.Location, error) {
	if name == "Local" || len(name) > 64 {
		return nil, ErrZone
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, ErrZone
	}
	return loc, nil
}

// Range is one weekly range of a Schedule: on each of its days, from start to end (minutes after
// the day's midnight, wall clock). end <= start crosses midnight into the next day.
type Range struct {
	days       [7]bool // indexed by time.Weekday
	start, end int
}

// ParseRange parses one range (see Parse for the syntax).
func ParseRange(s string) (Range, error) {
	if len(s) > maxRangeLen {
		return Range{}, ErrShape
	}
	s = strings.ReplaceAll(s, "–", "-")
	i := strings.IndexFunc(s, unicode.IsDigit)
	if i < 0 {
		return Range{}, ErrShape
	}
	dayPart, timePart := stripSpaces(s[:i]), stripSpaces(s[i:])
	if dayPart == "" {
		return Range{}, ErrShape
	}
	var r Range
	for _, item := range strings.Split(dayPart, ",") {
		from, to, isRange := strings.Cut(item, "-")
		a, ok := weekday(from)
		if !ok {
			return Range{}, ErrDay
		}
		b := a
		if isRange {
			if b, ok = weekday(to); !ok {
				return Range{}, ErrDay
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			r.days[d] = true
			if d == b {
				break
			}
		}
	}
	startText, endText, ok := strings.Cut(timePart, "-")
	if !ok {
		return Range{}, ErrShape
	}
	var okStart, okEnd bool
	r.start, okStart = clock(startText)
	r.end, okEnd = clock(endText)
	switch {
	case !okStart || r.start == 24*60:
		return Range{}, ErrStart
	case !okEnd:
		return Range{}, ErrEnd
	case r.start == r.end:
		return Range{}, ErrEmptyRange
	}
	return r, nil
}

func stripSpaces(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

func weekday(s string) (time.Weekday, bool) {
	d, ok := weekdays[strings.ToLower(s)]
	return d, ok
}

// clock reads H:MM or HH:MM, 00:00 to 24:00, as minutes after midnight.
func clock(s string) (int, bool) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !digits(h) || !digits(m) {
		return 0, false
	}
	hh, _ := strconv.Atoi(h)
	mm, _ := strconv.Atoi(m)
	if hh > 24 || mm > 59 || hh == 24 && mm != 0 {
		return 0, false
	}
	return hh*60 + mm, true
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// String writes the range back in the syntax Parse reads, days in week order from Monday.
func (r Range) String() string {
	var days []string
	for _, d := range []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday} {
		if r.days[d] {
			days = append(days, d.String()[:3])
		}
	}
	return fmt.Sprintf("%s %02d:%02d-%02d:%02d", strings.Join(days, ","), r.start/60, r.start%60, r.end/60, r.end%60)
}
