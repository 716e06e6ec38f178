package config

import (
	"fmt"
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator/window"
)

// minWeeklyOpen: a window open less than this a week leaves a scheduled rotation little chance
// to start inside it.
const minWeeklyOpen = 2 * time.Hour

func (w *RotationWindow) applyDefaults() {
	if w.set() && w.SafetyMargin == 0 {
		w.SafetyMargin = Duration(DefaultSafetyMargin)
	}
}

// validateWindows checks the global rotationWindow and each application's own, and resolves the
// window every application runs with: its own block when set, else the global one.
func (c *Config) validateWindows(p *problems) {
	global := c.checkWindow(p, "rotationWindow", c.RotationWindow)
	for i := range c.Applications {
		a := &c.Applications[i]
		a.Window = global
		if a.RotationWindow.set() {
			a.Window = c.checkWindow(p, fmt.Sprintf("applications[%d].rotationWindow", i), a.RotationWindow)
		}
	}
}

// checkWindow reports the block's problems under where and returns its schedule (the zero
// Schedule when the block is not set or has a problem), warning when it cannot work with
// renewBefore.
func (c *Config) checkWindow(p *problems, where string, w RotationWindow) window.Schedule {
	if !w.set() {
		return window.Schedule{}
	}
	margin := w.SafetyMargin.D()
	marginOK := margin >= time.Hour && margin <= 170*24*time.Hour
	if !marginOK {
		p.at(where+".safetyMargin", "%s must be between 1h and 170d", margin)
	}
	s, problems := window.Parse(w.TimeZone, w.Open, max(margin, 0))
	for _, pr := range problems {
		// The messages are the window package's own fixed texts: none repeats a value.
		p.at(where+"."+pr.Field, "%v", pr.Err)
	}
	if !marginOK || len(problems) > 0 {
		return window.Schedule{}
	}
	c.warnWindow(p, where, s)
	return s
}

// warnWindow: a window and renewBefore that cannot work together are legal but likely a mistake.
// The week is measured on the wall clock; daylight saving time moves it by an hour at most.
func (c *Config) warnWindow(p *problems, where string, s window.Schedule) {
	open, closed := s.Weekly()
	if open < minWeeklyOpen {
		p.warn(where+".open", "open %s a week in all, less than %s: a scheduled rotation has little chance to start inside it",
			open, minWeeklyOpen)
	}
	slack := c.RenewBefore.D() - s.Margin()
	switch {
	case closed == 0:
		// Open all week (the way to exempt one application from a global window): nothing waits.
	case slack <= 0:
		p.warn(where+".safetyMargin", "%s is not shorter than renewBefore (%s): every renewal falls due inside the safety margin, so none waits for the window",
			s.Margin(), c.RenewBefore.D())
	case closed > slack:
		p.warn(where, "closed for up to %s at a stretch, longer than renewBefore - safetyMargin (%s): a renewal that falls due early in that stretch reaches the safety margin before the window opens, and starts outside it",
			closed, slack)
	}
}
