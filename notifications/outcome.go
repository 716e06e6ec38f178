package notifications

// Outcome is what became of one notification: the label of lwa_rotator_notifications_total, and
// what decides the message's fate on the queue (Verdict).
type Outcome string

// The outcomes, in the order help text and pre-created series list them.
const (
	OutcomeProcessed     Outcome = "processed"      // the work it asked for is durable
	OutcomeStaged        Outcome = "staged"         // its secret is durable as AWSPENDING; promotion continues from the vault
	OutcomeDuplicate     Outcome = "duplicate"      // its secret is already current
	OutcomeStale         Outcome = "stale"          // about a secret already replaced
	OutcomeRejected      Outcome = "rejected"       // refused: wrong application, planted secret, sender not allowed
	OutcomeUnknownClient Outcome = "unknown_client" // a client id this daemon does not manage
	OutcomeMalformed     Outcome = "malformed"      // not a notification this package can parse
	OutcomeFailed        Outcome = "failed"         // a transient failure; the message comes back
)

// Outcomes lists every Outcome; metrics and docs read it rather than keeping their own list.
var Outcomes = []Outcome{OutcomeProcessed, OutcomeStaged, OutcomeDuplicate, OutcomeStale, OutcomeRejected, OutcomeUnknownClient,
	OutcomeMalformed, OutcomeFailed}

// Verdict is how a message is answered on the queue.
type Verdict int

const (
	// Done: delete the message.
	Done Verdict = iota
	// Retry: leave it, back soon (a short delay that grows while the application's messages fail).
	Retry
	// Refuse: leave it, back after RejectedRetry, so it ends in the dead-letter queue where an
	// operator can still read it. A refused message is never deleted.
	Refuse
)

// Verdict says how a message with this outcome is answered.
func (o Outcome) Verdict() Verdict {
	switch o {
	case OutcomeProcessed, OutcomeStaged, OutcomeDuplicate, OutcomeStale:
		return Done
	case OutcomeFailed:
		return Retry
	default:
		return Refuse
	}
}

// Types lists the notification types this package parses, for pre-created series.
var Types = []string{TypeExpiry, TypeNewSecret}
