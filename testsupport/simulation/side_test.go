package simulation

import (
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// appSide is everything the harness keeps about one application besides its secret (which is
// in the world's Secrets Manager): Amazon's view, armed faults, the rotator's jitter stream, and
// what the checks remember.
type appSide struct {
	idx     int
	app     rotator.App
	records map[string]vault.Record // decoded versions of its secret, by version id
	// currentID is the version holding AWSCURRENT, read back after every write (smAPI.write).
	currentID string
	amz       amazonSide
	faults    [numServices]burst
	crash     crashPoint
	rnd       uint64 // calls made to the rotator's Rand while this application was being worked on
	outbox    []outgoing
	// delivered is the newest secret whose new-secret notification reached a queue.
	delivered int
	stats     appStats
	hist      history
	viol      []violation
}

// appStats are counters the fakes move while the rotator works.
type appStats struct {
	calls        [numServices]int
	faultHits    [numServices]int
	ambiguous    int
	mints        int
	throttled    int
	validations  int
	rejected     int // LWA refused a secret (planted, expired or unknown)
	promotions   int
	prevMismatch int            // promotions whose previousClientSecretExpiryTime is not AWSPREVIOUS's real expiry
	rotation     map[string]int // rotator.Observer.Rotation results
	outcome      map[string]int // rotator.Observer.Notification outcomes
}

// history is what the invariant checks remember between steps.
type history struct {
	lastReported  time.Time // last rotate call the rotator was told succeeded
	promotedSince bool      // a promotion happened after lastReported
	// lastAccepted is the last rotate call Amazon accepted (it minted a secret), by any replica;
	// acceptedFailed: its caller was told it failed; promotedSinceAccepted: a promotion followed it.
	lastAccepted          time.Time
	acceptedFailed        bool
	promotedSinceAccepted bool
	currentSeq            int  // mint sequence of the secret in AWSCURRENT (-1 if not genuine)
	down                  bool // AWSCURRENT was invalid at the last check
}

// mix is splitmix64: ids, secrets and the rotator's jitter are pure functions of the seed and a
// counter, so they do not depend on the order in which anything asked for them.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func unitFloat(x uint64) float64 { return float64(x>>11) / (1 << 53) }
