package status

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/spapi"
)

// Report is the output of `lwa-rotator status`. Its JSON field names are a stable interface for
// scripts (docs/operations.md lists them); times are RFC 3339 in UTC, and a field whose value is
// unknown or absent is left out.
type Report struct {
	CheckedAt    string      `json:"checkedAt"`
	Attention    bool        `json:"attention"`
	Applications []AppReport `json:"applications"`
}

// AppReport is one application's line.
type AppReport struct {
	Name     string `json:"name"`
	SecretID string `json:"secretId"`
	Readable bool   `json:"readable"`
	// Phase, Reason and NextActionAt are the daemon's decision on the same read (rotator.Decide).
	Phase        string `json:"phase"`
	Reason       string `json:"reason,omitempty"`
	NextActionAt string `json:"nextActionAt,omitempty"`
	// WindowOpensAt is when the rotation window a scheduled rotation waits for opens (then
	// NextActionAt too); OutsideWindow: a scheduled rotation starts now, outside its window,
	// because waiting would leave less than the window's safety margin before expiry.
	WindowOpensAt string `json:"windowOpensAt,omitempty"`
	OutsideWindow bool   `json:"outsideWindow"`
	// OldSecretDiesAt is when the current secret stops working if the rotate call is made at
	// NextActionAt: seven days later, never past its expiry. Absent when no call is planned.
	OldSecretDiesAt string `json:"oldSecretDiesAt,omitempty"`
	// HeldBy names the replica the daemon waits for: the holder of the claim on the due rotation
	// (reason claimed-by-replica), or the one holding the new secret (secret-in-hand); HeldUntil
	// is when its word lapses.
	HeldBy            string `json:"heldBy,omitempty"`
	HeldUntil         string `json:"heldUntil,omitempty"`
	CurrentVersionID  string `json:"currentVersionId,omitempty"`
	CurrentExpiresAt  string `json:"currentExpiresAt,omitempty"`
	StoredExpiresAt   string `json:"storedExpiresAt,omitempty"`
	NoticedExpiry     string `json:"noticedExpiry,omitempty"`
	PreviousExpiresAt string `json:"previousExpiresAt,omitempty"`
	// CurrentMintedAt is when Amazon minted the current secret: its stored expiry minus the
	// secret's 180-day lifetime.
	CurrentMintedAt string `json:"currentMintedAt,omitempty"`
	// NextRotationAt is NextActionAt under its older name, for the scripts that read it.
	NextRotationAt   string   `json:"nextRotationAt,omitempty"`
	InFlight         bool     `json:"inFlight"`
	InFlightSince    string   `json:"inFlightSince,omitempty"`
	Attempts         int      `json:"attempts"`
	NextAttemptAt    string   `json:"nextAttemptAt,omitempty"`
	LastCallAt       string   `json:"lastCallAt,omitempty"`
	RotationID       string   `json:"rotationId,omitempty"`
	PendingVersionID string   `json:"pendingVersionId,omitempty"`
	RequestPending   bool     `json:"requestPending"`
	RequestedAt      string   `json:"requestedAt,omitempty"`
	RequestedBy      string   `json:"requestedBy,omitempty"`
	RequestReason    string   `json:"requestReason,omitempty"`
	Attention        bool     `json:"attention"`
	Problems         []string `json:"problems"`
	Notes            []string `json:"notes"`
}

// Build assesses every state at now with the daemon's settings.
func Build(states []State, set rotator.Settings, now time.Time) Report {
	r := Report{CheckedAt: stamp(now), Applications: make([]AppReport, 0, len(states))}
	for _, s := range states {
		a := Assess(s, set, now)
		d, snap, st := a.Decision, s.Snapshot, s.Snapshot.State
		cur := snap.Current.Record
		line := AppReport{
			Name: s.App.Name, SecretID: s.App.SecretID, Readable: s.ReadErr == nil,
			Phase: d.Phase.String(), Reason: string(d.Reason), NextActionAt: stamp(d.NextActionAt), NextRotationAt: stamp(d.NextActionAt),
			WindowOpensAt: stamp(d.WindowOpensAt), OutsideWindow: d.OutsideWindow, OldSecretDiesAt: stamp(d.OldSecretDiesAt),
			HeldBy: d.HeldBy, HeldUntil: stamp(d.HeldUntil),
			CurrentVersionID: snap.Current.ID, CurrentExpiresAt: stamp(d.Expiry), StoredExpiresAt: stamp(cur.ExpiresAt),
			NoticedExpiry: stamp(st.NoticedExpiry), PreviousExpiresAt: stamp(cur.PreviousExpiresAt),
			InFlight: !st.RequestedAt.IsZero(), InFlightSince: stamp(st.RequestedAt),
			Attempts: st.Attempts, NextAttemptAt: stamp(st.NextAttemptAt), LastCallAt: stamp(st.LastCallAt), RotationID: st.RotationID,
			RequestPending: rotator.RequestPending(st),
			Attention:      a.Attention, Problems: nonNil(a.Problems), Notes: nonNil(a.Notes),
		}
		if !cur.ExpiresAt.IsZero() {
			line.CurrentMintedAt = stamp(cur.ExpiresAt.Add(-spapi.SecretLifetime))
		}
		if snap.Pending != nil {
			line.PendingVersionID = snap.Pending.ID
		}
		if !st.Request.At.IsZero() {
			line.RequestedAt, line.RequestedBy, line.RequestReason = stamp(st.Request.At), st.Request.By, st.Request.Reason
		}
		r.Attention = r.Attention || a.Attention
		r.Applications = append(r.Applications, line)
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// WriteJSON prints r as one indented JSON document.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable prints r for people: one row per application, then its problems and notes.
func WriteTable(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APPLICATION\tSTATE\tPHASE\tREASON\tNEXT ACTION\tWINDOW OPENS\tOLD SECRET DIES\tCURRENT EXPIRES\tPREVIOUS EXPIRES\tIN FLIGHT SINCE\tATTEMPTS\tPENDING\tREQUESTED")
	for _, a := range r.Applications {
		state := "ok"
		if a.Attention {
			state = "ATTENTION"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, state, a.Phase, dash(a.Reason), day(a.NextActionAt),
			day(a.WindowOpensAt), day(a.OldSecretDiesAt), day(a.CurrentExpiresAt), day(a.PreviousExpiresAt), day(a.InFlightSince), strconv.Itoa(a.Attempts), dash(a.PendingVersionID), yesNo(a.RequestPending))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range r.Applications {
		for _, p := range a.Problems {
			fmt.Fprintf(w, "%s: ATTENTION: %s\n", a.Name, p)
		}
		for _, n := range a.Notes {
			fmt.Fprintf(w, "%s: %s\n", a.Name, n)
		}
	}
	_, err := fmt.Fprintf(w, "checked at %s\n", r.CheckedAt)
	return err
}

// day shortens an RFC 3339 stamp to minutes for the table; the JSON keeps full precision.
func day(s string) string {
	if s == "" {
		return "-"
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.TrimSpace(s)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
