package rotator

// Result is how a rotation attempt ended: the label of lwa_rotator_rotations_total.
type Result string

// The results, in the order Results lists them.
const (
	ResultSuccess        Result = "success"         // a verified new secret was promoted
	ResultRequested      Result = "requested"       // the rotate call was accepted
	ResultRequestFailed  Result = "request_failed"  // the LWA token or rotate call failed
	ResultTimeout        Result = "timeout"         // no new secret arrived within the await deadline
	ResultRejected       Result = "rejected"        // LWA refused the new secret
	ResultNotEnrolled    Result = "not_enrolled"    // Amazon says no new-secret queue is registered
	ResultCurrentInvalid Result = "current_invalid" // LWA refused the stored current secret
)

// Results lists every Result; metrics and docs read it rather than keeping their own list.
var Results = []Result{ResultSuccess, ResultRequested, ResultRequestFailed, ResultTimeout, ResultRejected,
	ResultNotEnrolled, ResultCurrentInvalid}

// Step names a point of a rotation where a process can die. Options.Checkpoint is called at each.
type Step string

// The steps, in the order a rotation passes them.
const (
	StepClaimed        Step = "claimed"         // this process won the claim on the due rotation; the intent is next
	StepIntentSaved    Step = "intent-saved"    // the rotation intent is in the vault; the rotate call is next
	StepRotateCalled   Step = "rotate-called"   // Amazon accepted the rotate call
	StepSecretReceived Step = "secret-received" // a new-secret message was judged; nothing staged yet
	StepStaged         Step = "staged"          // the new secret is AWSPENDING
	StepVerified       Step = "verified"        // LWA accepted the new secret; AWSCURRENT not moved yet
	StepPromoted       Step = "promoted"        // AWSCURRENT moved; the message is about to be deleted
	StepDone           Step = "done"            // the message is deleted; the rotation state is about to be cleared
)

// Steps lists every Step in order.
var Steps = []Step{StepClaimed, StepIntentSaved, StepRotateCalled, StepSecretReceived, StepStaged, StepVerified, StepPromoted, StepDone}

// Phase is where one application's rotation stands. It is never stored: plan derives it from a
// vault snapshot, so the daemon's tags and labels stay the one source of truth.
type Phase int

// The phases.
const (
	PhaseUnknown    Phase = iota // the vault has not been read, or cannot be
	PhaseIdle                    // nothing to do before the planned rotation time
	PhaseBackingOff              // a rotation is due, but an attempt failed: waiting for the next attempt
	PhaseDue                     // a rotation is due now: request it
	PhaseRequested               // a rotate call was made; waiting for the new secret
	PhaseOverdue                 // requested, and the await deadline passed: the watchdog asks again
	PhasePending                 // a new secret is staged and must be verified and promoted, or cleared
)

var phaseNames = [...]string{"unknown", "idle", "backing_off", "due", "requested", "overdue", "pending"}

// Phases lists every Phase.
var Phases = []Phase{PhaseUnknown, PhaseIdle, PhaseBackingOff, PhaseDue, PhaseRequested, PhaseOverdue, PhasePending}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "phase(?)"
}
