#!/usr/bin/env bash
# Shows that the tests can fail: applies each deliberate mutant of the rotator to a temporary copy
# of the module and runs the suite that must catch it: the seeded simulation (testsupport/simulation,
# docs/reliability.md section 2) on SEEDS seeds (default 100), or the rotator's decision tests
# (the examples and the grid). The working tree is never touched. Run it after changing the rotator
# or the simulation, and put what it prints in docs/reliability.md.
#
#   ./scripts/mutants.sh            # every mutant
#   ./scripts/mutants.sh --unit     # only the mutants the decision tests must catch (about 2 minutes)
#   SEEDS=300 ./scripts/mutants.sh no-watchdog skip-promote
set -euo pipefail
# go.mod needs Go 1.27.3; the go command fetches it where another Go is installed.
export GOTOOLCHAIN=go1.27.3
cd "$(dirname "$0")/.."
root=$PWD
seeds=${SEEDS:-100}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# name, suite (sim or unit), file, the exact text replaced (it must occur once), its replacement,
# what it breaks.
mutants=$(
  cat <<'EOF'
skip-promote	sim	rotator/promote.go	if err := r.vault.PromoteOn(ctx, f.snap, v.ID); err != nil {	if err := error(nil); err != nil {	verified secrets are never made AWSCURRENT
skip-verification	sim	rotator/promote.go	if _, err := r.lwa.Token(ctx, app.ClientID, v.Record.ClientSecret); err != nil {	if _, err := r.lwa.Token(ctx, app.ClientID, v.Record.ClientSecret); false && err != nil {	any staged secret is promoted without LWA's word
no-never-backwards	sim	rotator/judge.go	if stored := cur.ExpiresAt; !stored.IsZero() && !n.ExpiresAt.After(stored) {	if stored := cur.ExpiresAt; false && !n.ExpiresAt.After(stored) {	an older secret is staged and promoted over a newer one
no-intent	sim	rotator/execute.go	if err := r.vault.SaveChanges(ctx, app.SecretID, st, in); err != nil {	if err := error(nil); err != nil {	the rotate call is made without recording it first
no-watchdog	sim	rotator/plan.go	if deadline := st.RequestedAt.Add(s.AwaitDeadline); now.Before(deadline) {	if deadline := now.Add(idleRecheck); true {	a rotation whose secret never came is waited for forever
delete-on-stage-failure	sim	rotator/receive.go	return handled(app, notifications.OutcomeFailed, func() { log.Warn("staging the new secret as AWSPENDING; will retry", zap.Error(err)) })	return handled(app, notifications.OutcomeProcessed, nil)	a message is deleted although its secret was not written
staged-not-replanned	sim	rotator/receive.go	\t\ta.dirty.Store(true)\n\t\treturn handled(app, notifications.OutcomeStaged,	\t\treturn handled(app, notifications.OutcomeStaged,	a message whose secret is staged but unverified is deleted with no pass planned to finish it
no-claim	sim	rotator/execute.go	c, err := r.vault.ClaimOn(ctx, f.snap, vault.Claim{Holder: r.holder, RotationID: id, ClaimedAt: now, Until: now.Add(set.claimLease())})	c, err := vault.Claim{Holder: r.holder, RotationID: id, ClaimedAt: now, Until: now.Add(set.claimLease())}, error(nil)	every replica that reads a rotation due takes it as won and calls rotate: no claim is written, so none is ever refused
equal-expiry-newer	unit	rotator/plan.go	return !cur.ExpiresAt.IsZero() && !p.ExpiresAt.After(cur.ExpiresAt)	return !cur.ExpiresAt.IsZero() && p.ExpiresAt.Before(cur.ExpiresAt)	a pending version with the current secret's own expiry is resumed, and AWSPREVIOUS moves onto a copy of the current secret
notice-ignored	unit	rotator/decision.go	(e.IsZero() || st.NoticedExpiry.Before(e))	(e.IsZero())	Amazon's earlier expiry notice is ignored and the rotation starts too late
served-request-pending	unit	rotator/decision.go	!st.Request.At.IsZero() && !st.Request.At.Equal(st.ServedRequest)	!st.Request.At.IsZero()	an operator's request is served again after every rotation
no-call-limit	unit	rotator/plan.go	return last.Add(s.rotateInterval())	return time.Time{}	two rotate calls within Amazon's minute
next-is-the-deadline	unit	rotator/plan.go	a.actAt = later(watchdogRetry(st, s), callAllowedAt(st, f.snap.Current.Record, s))	a.actAt = st.RequestedAt.Add(s.AwaitDeadline)	status and the metric name the await deadline, not the moment the watchdog calls rotate again
window-ignored	unit	rotator/plan.go	return (why == ReasonRenewal || why == ReasonCanary) && st.Attempts == 0	return false	a scheduled rotation starts outside the rotation window
window-holds-retries	unit	rotator/plan.go	return (why == ReasonRenewal || why == ReasonCanary) && st.Attempts == 0	return why == ReasonRenewal || why == ReasonCanary || why == ReasonSecretOwed	a rotation under way waits for the window while the old secret's clock runs
canary-ignored	unit	rotator/plan.go	return exp.Add(-spapi.SecretLifetime).Add(s.CanaryEvery)	return time.Time{}	a canary never rotates on its own schedule
claim-lapse-by-now	unit	rotator/plan.go	case !f.snap.ReadAt.Before(c.Until):	case !now.Before(c.Until):	a claim is taken over on a read made before it lapsed, which may not show the holder's call
in-hand-ignored	unit	rotator/plan.go	if !lease.Live(now) || f.snap.Pending != nil {	if true {	a replica's watchdog asks again while another replica holds the new secret
sigusr1-never-answered	unit	rotator/plan.go	return cur.ExpiresAt.IsZero() || cur.ExpiresAt.Add(-spapi.SecretLifetime).Before(at)	return true	a replica that got SIGUSR1 calls again at every await deadline once another replica promoted its secret
EOF
)

# mutate DIR FILE FROM TO: replaces the one occurrence of FROM (\n and \t are escapes) in DIR/FILE.
mutate() {
  python3 - "$@" <<'EOF'
import sys
d, f, old, new = sys.argv[1:5]
old, new = (s.replace("\\n", "\n").replace("\\t", "\t") for s in (old, new))
path = d + "/" + f
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"{f}: the mutated text occurs {text.count(old)} times, not once; update scripts/mutants.sh")
open(path, "w").write(text.replace(old, new))
EOF
}

# unit NAME FILE FROM TO: copies the module, applies the mutant, runs the rotator's decision tests,
# prints a row; fails when they pass (the mutant was missed).
unit() {
  local name=$1 dir="$work/$1" out
  mkdir -p "$dir"
  tar -C "$root" --exclude=./.git -cf - . | tar -C "$dir" -xf -
  mutate "$dir" "$2" "$3" "$4"
  if out=$(cd "$dir" && go test ./rotator -run '^(TestDecide|TestPlan|TestJudge)' -count=1 2>&1); then
    printf '%-24s missed   (the decision tests pass)\n' "$name"
    return 1
  fi
  if grep -q '\[build failed\]\|^# \|setup failed' <<<"$out"; then
    printf '%-24s BUILD FAILED\n' "$name"
    grep -m5 '\.go:' <<<"$out" >&2 || true
    return 1
  fi
  printf '%-24s caught   (%s)\n' "$name" "$(grep -m3 -oE '^\s*--- FAIL: [A-Za-z_/]+' <<<"$out" | sed -E 's/^\s*--- FAIL: //' | paste -sd ',' -)"
  rm -rf "$dir"
}

# run NAME [FILE FROM TO]: copies the module, applies the mutant, runs the simulation, prints a row.
run() {
  local name=$1 dir="$work/$1" out
  mkdir -p "$dir"
  tar -C "$root" --exclude=./.git -cf - . | tar -C "$dir" -xf -
  if [ $# -gt 1 ]; then mutate "$dir" "$2" "$3" "$4"; fi
  if out=$(cd "$dir" && go test ./testsupport/simulation -run '^TestSimulation$' -count=1 -seeds="$seeds" -v 2>&1); then :; fi
  if grep -q '\[build failed\]\|^# ' <<<"$out"; then
    printf '%-24s BUILD FAILED\n' "$name"
    grep -m5 '\.go:' <<<"$out" >&2 || true
    return 1
  fi
  local failed invariants
  failed=$(grep -oE '\| runs with an invariant violation \| [0-9]+ \|' <<<"$out" | grep -oE '[0-9]+' || echo "?")
  # The invariants broken, with the runs breaking each: the rows of the last table that are not 0.
  invariants=$(sed -n '/| invariant (runs violating) | count |/,$p' <<<"$out" |
    grep -E '^\s+\| .* \| [1-9][0-9]* \|$' | sed -E 's/^\s+\| (.*) \| ([0-9]+) \|$/\1: \2/' | paste -sd ';' - | sed 's/;/; /g' || true)
  if [ "$name" = unmutated ]; then
    printf '%-24s %s/%s seeds with a violation (must be 0)\n' "$name" "$failed" "$seeds"
    [ "$failed" = "0" ] || return 1
  elif [ "$failed" = "0" ]; then
    printf '%-24s missed   0/%s seeds\n' "$name" "$seeds"
  else
    printf '%-24s caught   %s/%s seeds  (%s)\n' "$name" "$failed" "$seeds" "${invariants:-see the test output}"
  fi
}

only_unit=0
if [ "${1:-}" = "--unit" ]; then only_unit=1; shift; fi
selected=("$@")
wanted() {
  [ ${#selected[@]} -eq 0 ] && return 0
  local s
  for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}

echo "mutants: decision tests (go test ./rotator -run 'TestDecide|TestPlan|TestJudge'); simulation, $seeds seeds each (go test ./testsupport/simulation -run TestSimulation -seeds=$seeds)"
status=0
if [ ${#selected[@]} -eq 0 ] && [ $only_unit = 0 ]; then
  run unmutated || status=1
fi
while IFS=$'\t' read -r name suite file from to what; do
  wanted "$name" || continue
  case "$suite" in
    unit) unit "$name" "$file" "$from" "$to" || status=1 ;;
    sim) [ $only_unit = 1 ] && continue; run "$name" "$file" "$from" "$to" || status=1 ;;
  esac
  printf '%-24s   %s\n' "" "$what"
done <<<"$mutants"
exit $status
