package simulation

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator"
)

// figures are what a run (or all runs) did, for the log and docs/reliability.md.
type figures struct {
	runs, apps, steps, ticks, handled, redeliveries int
	holds                                           int // waits of a message held through a failure
	days                                            float64
	restarts, faults, rotation, outcome, dlq        map[string]int
	hits                                            [numServices]int
	ambiguous, mints, promotions                    int
	validations, rejected, throttled                int
	prevMismatch, plantedDeleted, genuineDLQ        int
	reordered, acksChecked                          int
	replicas                                        map[int]int    // runs by the number of replicas
	nested                                          int            // a replica's work run inside another's call
	slowReads                                       int            // reads answered late in multi-replica runs
	claims, claimsRefused                           int            // claim puts written, and refused as already made
	acceptedChecked                                 int            // accepted rotate calls checked against invariant 5
	violated                                        map[string]int // runs breaking each invariant
	failed                                          []uint64
}

func newFigures() *figures {
	return &figures{restarts: map[string]int{}, faults: map[string]int{}, rotation: map[string]int{},
		outcome: map[string]int{}, dlq: map[string]int{}, violated: map[string]int{}, replicas: map[int]int{}}
}

func addMap(dst, src map[string]int) {
	for k, v := range src {
		dst[k] += v
	}
}

func (f *figures) add(o *figures) {
	f.runs += o.runs
	f.apps += o.apps
	f.steps += o.steps
	f.ticks += o.ticks
	f.handled += o.handled
	f.redeliveries += o.redeliveries
	f.holds += o.holds
	f.days += o.days
	for _, m := range [][2]map[string]int{{f.restarts, o.restarts}, {f.faults, o.faults}, {f.rotation, o.rotation},
		{f.outcome, o.outcome}, {f.dlq, o.dlq}, {f.violated, o.violated}} {
		addMap(m[0], m[1])
	}
	for i := range f.hits {
		f.hits[i] += o.hits[i]
	}
	f.ambiguous += o.ambiguous
	f.mints += o.mints
	f.promotions += o.promotions
	f.validations += o.validations
	f.rejected += o.rejected
	f.throttled += o.throttled
	f.prevMismatch += o.prevMismatch
	f.plantedDeleted += o.plantedDeleted
	f.genuineDLQ += o.genuineDLQ
	f.reordered += o.reordered
	f.acksChecked += o.acksChecked
	for n, runs := range o.replicas {
		f.replicas[n] += runs
	}
	f.nested += o.nested
	f.slowReads += o.slowReads
	f.claims += o.claims
	f.claimsRefused += o.claimsRefused
	f.acceptedChecked += o.acceptedChecked
	f.failed = append(f.failed, o.failed...)
}

// finish folds the sides' counters and violations into the run's figures.
func (s *sim) finish() {
	f := s.fig
	for _, side := range s.sides {
		st := side.stats
		for i := range f.hits {
			f.hits[i] += st.faultHits[i]
		}
		f.ambiguous += st.ambiguous
		f.mints += st.mints
		f.promotions += st.promotions
		f.validations += st.validations
		f.rejected += st.rejected
		f.throttled += st.throttled
		f.prevMismatch += st.prevMismatch
		addMap(f.rotation, st.rotation)
		addMap(f.outcome, st.outcome)
		s.violations = append(s.violations, side.viol...)
	}
	slices.SortStableFunc(s.violations, func(a, b violation) int { return a.at.Compare(b.at) })
	seen := map[string]bool{}
	for _, v := range s.violations {
		if !seen[v.inv] {
			seen[v.inv] = true
			f.violated[v.inv]++
		}
	}
	if len(s.violations) > 0 {
		f.failed = append(f.failed, s.seed)
	}
}

func table(b *strings.Builder, title string, m map[string]int) {
	fmt.Fprintf(b, "\n| %s | count |\n|---|---:|\n", title)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(b, "| %s | %d |\n", k, m[k])
	}
}

// markdown renders the figures as the section docs/reliability.md takes.
func (f *figures) markdown(seeds string, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Deterministic simulation\n\n")
	fmt.Fprintf(&b, "`go test ./testsupport/simulation -run TestSimulation %s` ran the real rotator, vault.Store, consumer and\n", seeds)
	fmt.Fprintf(&b, "dispatcher, as one to three replicas, against testsupport/fakesm, testsupport/fakesqs and testsupport/amazon in %v of wall time.\n\n", elapsed.Round(time.Second))
	fmt.Fprintf(&b, "| figure | value |\n|---|---:|\n")
	rows := []struct {
		k string
		v any
	}{
		{"runs (seeds)", f.runs},
		{"runs with 1 / 2 / 3 replicas", fmt.Sprintf("%d / %d / %d", f.replicas[1], f.replicas[2], f.replicas[3])},
		{"a replica's pass or poll run inside another's call", f.nested},
		{"reads answered 1-90 s late while the other replicas worked", f.slowReads},
		{"claims written / refused (a claim under that token existed)", fmt.Sprintf("%d / %d", f.claims, f.claimsRefused)},
		{"simulated days", fmt.Sprintf("%.0f (%.1f years)", f.days, f.days/365)},
		{"application-days", fmt.Sprintf("%.0f", f.days*float64(f.apps)/float64(max(f.runs, 1)))},
		{"simulation steps (clock moves)", f.steps},
		{"scheduler ticks", f.ticks},
		{"messages handled", f.handled},
		{"redeliveries (receive count > 1)", f.redeliveries},
		{"waits of messages held in hand through a failure", f.holds},
		{"rotate calls accepted by SP-API (secrets minted)", f.mints},
		{"accepted rotate calls checked against invariant 5 (one per due rotation)", f.acceptedChecked},
		{"successful rotations (AWSCURRENT moved)", f.promotions},
		{"watchdog retries (await deadline passed)", f.rotation[string(rotator.ResultTimeout)]},
		{"rotate requests failed and retried", f.rotation[string(rotator.ResultRequestFailed)]},
		{"rotate calls throttled (429, one a minute; single-replica runs)", f.throttled},
		{"secrets LWA verified / refused", fmt.Sprintf("%d / %d", f.validations, f.rejected)},
		{"failing calls made (vault / LWA / SP-API)", fmt.Sprintf("%d / %d / %d", f.hits[svcVault], f.hits[svcLWA], f.hits[svcSPAPI])},
		{"of which took effect before failing", f.ambiguous},
		{"new-secret notifications delivered after a newer one", f.reordered},
		{"new-secret deletions checked against invariant 1", f.acksChecked},
		{"genuine new secrets dead-lettered", f.genuineDLQ},
		{"planted-secret messages deleted (stale)", f.plantedDeleted},
		{"promotions whose previous-expiry field differs from AWSPREVIOUS's real expiry", f.prevMismatch},
		{"runs with an invariant violation", len(f.failed)},
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %v |\n", r.k, r.v)
	}
	table(&b, "fault injected (per call, message or event)", f.faults)
	table(&b, "process restart", f.restarts)
	table(&b, "rotation result (rotator.Observer)", f.rotation)
	table(&b, "notification outcome (notifications.Dispatcher)", f.outcome)
	table(&b, "dead-lettered message", f.dlq)
	inv := map[string]int{}
	for _, k := range []string{invOutage, invLost, invVerified, invBackwards, invPrevious, invDuplicate, invOneCall} {
		inv[k] = f.violated[k]
	}
	for k, v := range f.violated {
		inv[k] = v
	}
	table(&b, "invariant (runs violating)", inv)
	return b.String()
}
