package rotator

import (
	"time"

	"github.com/spapi-tools/lwa-rotator/notifications"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// staleNoticeSlack: how close a notice's expiry must be to the previous secret's to be taken as
// about that secret. Both come from Amazon to the millisecond; a secret shortened by a later call
// dies at least a minute (the rotate rate limit) after the previous one.
const staleNoticeSlack = 10 * time.Second

// verdict is what one notification asks of the vault, and the outcome if the writes succeed.
// The executor performs the writes in field order and decides nothing.
type verdict struct {
	outcome notifications.Outcome
	reason  reason // why, for the log line
	// settleFirst: a newer, unverified secret is pending; verify (or clear) it, then judge this
	// message again on a new snapshot.
	settleFirst bool
	// clearPending names the message's own pending version when the message proved stale.
	clearPending string
	// save is the state to write (a recorded notice, or bookkeeping a crash after promotion
	// left); wake asks the scheduler to plan this application now.
	save *vault.RotationState
	wake bool
	// stage puts record under token as AWSPENDING; promote verifies it with LWA and makes it
	// AWSCURRENT. verifyFirst proves record with LWA before the put: another, older secret is
	// staged, and the put takes its label.
	stage, promote, verifyFirst bool
	token                       string
	record                      vault.Record
	// For the log line: the application id a refused notification named, a notice's expiry.
	applicationID string
	noticed       time.Time
}

// reason names the rule a verdict came from; the executor's log line says it.
type reason int

const (
	reasonNone reason = iota
	reasonOtherApplication
	reasonReplacedSecret
	reasonNoticeRecorded
	reasonNoticeKnown
	reasonAlreadyCurrent
	reasonOlderSecret
	reasonNewerPending
	reasonNewSecret
)

// judge decides what one notification does to one application's snapshot. It is pure.
func judge(n notifications.Notification, f facts, now time.Time) verdict {
	meta := n.Meta()
	if want := f.app.ApplicationID; want != "" && meta.Metadata.ApplicationID != want {
		return verdict{outcome: notifications.OutcomeRejected, reason: reasonOtherApplication, applicationID: meta.Metadata.ApplicationID}
	}
	switch v := n.(type) {
	case *notifications.ExpiryNotice:
		return judgeExpiry(v, f, now)
	case *notifications.NewSecret:
		return judgeNewSecret(v, f)
	}
	return verdict{outcome: notifications.OutcomeMalformed}
}

func judgeExpiry(n *notifications.ExpiryNotice, f facts, now time.Time) verdict {
	st := f.snap.State
	if aboutReplacedSecret(n, f.snap.Current.Record, now) {
		return verdict{outcome: notifications.OutcomeStale, reason: reasonReplacedSecret, noticed: n.ExpiresAt}
	}
	// Known already: recorded, or (with nothing recorded) the stored record's own expiry, which
	// the plan uses anyway. Amazon's routine notice about the current secret costs no write.
	if st.NoticedExpiry.Equal(n.ExpiresAt) || (st.NoticedExpiry.IsZero() && n.ExpiresAt.Equal(f.snap.Current.Record.ExpiresAt)) {
		return verdict{outcome: notifications.OutcomeProcessed, reason: reasonNoticeKnown, noticed: n.ExpiresAt}
	}
	st.NoticedExpiry = n.ExpiresAt
	return verdict{outcome: notifications.OutcomeProcessed, reason: reasonNoticeRecorded, save: &st, wake: true, noticed: n.ExpiresAt}
}

// aboutReplacedSecret tells a notice about an older secret (which dies on its own schedule) from
// one about the current secret. A notice sent before the current secret was minted is about an
// older one; so is one whose expiry is no later than the previous secret's, since every older
// secret dies no later than that. The current secret can die earlier than stored, though: a
// rotate call whose secret never reached us shortens its life, and Amazon's notice may be the
// only word of it, so an earlier expiry alone does not make a notice stale.
func aboutReplacedSecret(n *notifications.ExpiryNotice, cur vault.Record, now time.Time) bool {
	if n.ExpiresAt.Before(now) {
		return true // the current secret still works, or we could not be reading this
	}
	if prev := cur.PreviousExpiresAt; !prev.IsZero() && !n.ExpiresAt.After(prev.Add(staleNoticeSlack)) {
		return true
	}
	if stored := cur.ExpiresAt; !stored.IsZero() {
		minted := stored.Add(-spapi.SecretLifetime)
		return n.EventTime.Before(minted.Add(staleNoticeSlack))
	}
	return false
}

func judgeNewSecret(n *notifications.NewSecret, f facts) verdict {
	st, cur := f.snap.State, f.snap.Current.Record
	token := vault.TokenFor(n.Metadata.NotificationID)
	rec := vault.Record{ClientID: n.ClientID, ClientSecret: n.Secret, ExpiresAt: n.ExpiresAt, PreviousExpiresAt: n.OldExpiresAt}
	// Never backwards: order by the secret's own expiry time, not by arrival.
	if stored := cur.ExpiresAt; !stored.IsZero() && !n.ExpiresAt.After(stored) {
		if cur.ClientSecret.Equal(n.Secret) {
			v := verdict{outcome: notifications.OutcomeDuplicate, reason: reasonAlreadyCurrent}
			if !st.RequestedAt.IsZero() && answered(st, cur) {
				// A crash after promotion left the rotation marked in flight: finish the
				// bookkeeping (unless this is an old copy and a later rotate call is still owed).
				after := stateAfterPromotion(st, cur)
				v.save = &after
			}
			return v
		}
		v := verdict{outcome: notifications.OutcomeStale, reason: reasonOlderSecret}
		if p := f.snap.Pending; p != nil && p.ID == token {
			v.clearPending = token
		}
		return v
	}
	if p := f.snap.Pending; p != nil && p.ID != token && p.Record.ExpiresAt.After(n.ExpiresAt) {
		// A newer secret is pending, but unverified: it may be planted. Settle it first, and only
		// then judge this message against whatever is current.
		return verdict{outcome: notifications.OutcomeFailed, reason: reasonNewerPending, settleFirst: true}
	}
	v := verdict{outcome: notifications.OutcomeProcessed, reason: reasonNewSecret, stage: true, promote: true, token: token, record: rec}
	if p := f.snap.Pending; p != nil && p.ID != token {
		// An older secret is staged, unverified, and its message may be gone already (staged is
		// durable). Putting this one takes its label: were this one planted and refused, the
		// older genuine secret would be left in no labelled version. Prove this one first.
		v.verifyFirst = true
	}
	return v
}
