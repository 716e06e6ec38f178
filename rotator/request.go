package rotator

import (
	"fmt"
	"strings"
	"time"
)

// CanRequest says whether an operator's request to rotate now (lwa-rotator rotate) can be
// served, judged by the decision the daemon makes on the same snapshot at now; when it cannot,
// why says so in words for people. A request is refused while a rotation is in flight or a
// secret is staged (a second rotate call would shorten the life of the secret on its way), while
// an earlier request still waits, and before Amazon accepts another rotate call
// (Settings.RotateInterval after the latest one). It is pure.
func CanRequest(in Input, s Settings, now time.Time) (ok bool, why string) {
	snap, st := in.Snapshot, in.Snapshot.State
	d := Decide(in, s, now)
	switch {
	case snap.Current.ID == "":
		return false, "the secret has no AWSCURRENT version to rotate (store one with lwa-rotator seed)"
	case snap.Claim != nil && snap.ReadAt.Before(snap.Claim.Until):
		return false, fmt.Sprintf("replica %s claimed the due rotation and makes the rotate call (its claim lapses at %s)", snap.Claim.Holder, moment(snap.Claim.Until))
	case st.InHand.Live(now):
		// A request now would rotate again as soon as the secret in hand is promoted.
		return false, fmt.Sprintf("replica %s holds a new secret and is storing it (its word lapses at %s)", st.InHand.By, moment(st.InHand.Until))
	case d.Phase == PhaseRequested || d.Phase == PhaseOverdue:
		return false, fmt.Sprintf("a rotation is already in flight since %s (rotation %s); its new secret is awaited",
			moment(st.RequestedAt), st.RotationID)
	case d.Phase == PhasePending && d.Reason == ReasonStalePending:
		return false, fmt.Sprintf("version %s is staged as AWSPENDING but is not newer than the current secret: the daemon removes its label first",
			snap.Pending.ID)
	case d.Phase == PhasePending:
		return false, fmt.Sprintf("a new secret (version %s) is staged as AWSPENDING and waits to be verified and promoted", snap.Pending.ID)
	case RequestPending(st):
		by := ""
		if st.Request.By != "" {
			by = " by " + st.Request.By
		}
		return false, fmt.Sprintf("a rotation was already requested at %s%s and waits for the daemon", moment(st.Request.At), by)
	case now.Before(callAllowedAt(st, snap.Current.Record, s)):
		allowed := callAllowedAt(st, snap.Current.Record, s)
		return false, fmt.Sprintf("the last rotate call was at %s and Amazon allows one every %s: ask again after %s",
			moment(allowed.Add(-s.rotateInterval())), strings.TrimSuffix(s.rotateInterval().String(), "0s"), moment(allowed))
	}
	return true, ""
}

// moment writes a time for people: RFC 3339 in UTC.
func moment(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
