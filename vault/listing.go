package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
)

// Lister holds the two account-wide calls that let the Store read many secrets in a few
// requests; *secretsmanager.Client satisfies it. It is not part of SecretsManager so that a
// client wrapper without them still builds: a Store whose client lacks them answers
// ErrListDenied, and its callers read secret by secret, as they do when IAM refuses the calls.
type Lister interface {
	ListSecrets(ctx context.Context, params *secretsmanager.ListSecretsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
	BatchGetSecretValue(ctx context.Context, params *secretsmanager.BatchGetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error)
}

// ErrListDenied: reading many secrets at once is not possible for this process, because IAM
// refused ListSecrets (an operator may choose not to grant it) or the client cannot list. The
// Store remembers it for the process's life and makes no further listing call: ReadListed
// answers nothing and DescribeAll describes each secret, and the callers of Requests read each
// secret on its own (LoadState), at what that costs.
var ErrListDenied = errors.New("vault: listing secrets is denied")

// The API's page limits, and when a listing is worth making.
const (
	listPage  = 100 // ListSecrets MaxResults
	batchPage = 20  // BatchGetSecretValue SecretIdList
	// maxFilterValue is the longest value a ListSecrets filter takes.
	maxFilterValue = 512
	// fetchConcurrency bounds the per-secret calls one read of many secrets makes at once: a
	// thousand take a fraction of a second instead of seconds, far inside Secrets Manager's
	// published rates.
	fetchConcurrency = 8
	// listMin is the number of ids from which ReadListed lists: a listing costs one call per 100
	// secrets under the ids' common name prefix (every secret in the account when they have
	// none), so below it reading each secret costs about the same and is fresh.
	listMin = 10
	// listLag is how long after the Store wrote to a secret it answers for that secret from no
	// listing: AWS documents that ListSecrets may not reflect the last five minutes' changes,
	// and this leaves as much again as margin.
	listLag = 10 * time.Minute
)

// listing is what the Store remembers about the account-wide calls. Its lock is never held
// across a call.
type listing struct {
	mu sync.Mutex
	// denied is the first ListSecrets refusal (wrapping ErrListDenied), batchDenied the first
	// BatchGetSecretValue refusal; nil while allowed.
	denied, batchDenied error
}

// writeLog is when the Store last wrote to each secret, keyed by the id the write named, so that
// it never answers for a secret from a listing that may not show its own write yet. Its lock is
// never held across a call.
type writeLog struct {
	mu sync.Mutex
	at map[string]time.Time
}

// noteWrite records a write about to be made to secretID: before the call, since one that fails
// (a timeout, say) may still have taken effect.
func (s *Store) noteWrite(secretID string) {
	now := s.now()
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	if s.writes.at == nil {
		s.writes.at = map[string]time.Time{}
	}
	s.writes.at[secretID] = now
}

// wroteSince reports whether the Store wrote to secretID after t.
func (s *Store) wroteSince(secretID string, t time.Time) bool {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	at, ok := s.writes.at[secretID]
	return ok && at.After(t)
}

// forgetWritesBefore drops the writes made before t, which no longer keep a secret from a
// listing, so the log holds only the secrets written in the last listLag.
func (s *Store) forgetWritesBefore(t time.Time) {
	s.writes.mu.Lock()
	defer s.writes.mu.Unlock()
	for id, at := range s.writes.at {
		if !at.After(t) {
			delete(s.writes.at, id)
		}
	}
}

// deniedErr returns the remembered ListSecrets refusal, nil while listing is allowed.
func (s *Store) deniedErr() error {
	s.list.mu.Lock()
	defer s.list.mu.Unlock()
	return s.list.denied
}

func (s *Store) batchDeniedErr() error {
	s.list.mu.Lock()
	defer s.list.mu.Unlock()
	return s.list.batchDenied
}

// isAccessDenied reports IAM's refusal of a call.
func isAccessDenied(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "AccessDeniedException"
}

// deny remembers a refusal of op and logs it the first time only; it returns the error later
// calls return at once.
func (s *Store) deny(op string, ids []string, err error) error {
	wrapped := fmt.Errorf("calling %s: %w: %w", op, ErrListDenied, err)
	s.list.mu.Lock()
	slot := &s.list.denied
	if op == opBatchGet {
		slot = &s.list.batchDenied
	}
	first := *slot == nil
	if first {
		*slot = wrapped
	} else {
		wrapped = *slot
	}
	s.list.mu.Unlock()
	if first {
		shown := ids[:min(len(ids), 10)]
		msg := "Secrets Manager refused " + op + "; reading each secret on its own from now on (one DescribeSecret per secret per pass)"
		if op == opBatchGet {
			msg = "Secrets Manager refused " + op + "; reading uncached secret values one GetSecretValue each from now on"
		}
		s.log().Warn(msg, zap.String("op", op), zap.Int("secrets", len(ids)), zap.Strings("first_secret_ids", shown))
	}
	return wrapped
}

const (
	opList     = "ListSecrets"
	opBatchGet = "BatchGetSecretValue"
)

func (s *Store) lister() (Lister, error) {
	if err := s.deniedErr(); err != nil {
		return nil, err
	}
	l, ok := s.SM.(Lister)
	if !ok {
		return nil, fmt.Errorf("the Secrets Manager client has no %s: %w", opList, ErrListDenied)
	}
	return l, nil
}

// listed is one ListSecrets entry matched to the id a caller gave for it.
type listed struct {
	id    string
	entry types.SecretListEntry
}

// listFor lists the secrets under filters, one call per page of 100, and matches each entry to
// the ids naming it. ids not listed are absent from the result.
func (s *Store) listFor(ctx context.Context, ids []string, filters []types.Filter) ([]listed, error) {
	entries, err := s.list1(ctx, ids, filters)
	if err != nil {
		return nil, err
	}
	return matchIDs(ids, entries), nil
}

// list1 is one listing: every page of ListSecrets under filters.
func (s *Store) list1(ctx context.Context, ids []string, filters []types.Filter) ([]types.SecretListEntry, error) {
	l, err := s.lister()
	if err != nil {
		return nil, err
	}
	in := &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(listPage), Filters: filters}
	var entries []types.SecretListEntry
	for {
		page, err := l.ListSecrets(ctx, in)
		if err != nil {
			if isAccessDenied(err) {
				return nil, s.deny(opList, ids, err)
			}
			return nil, fmt.Errorf("listing secrets: %w", mapErr(err))
		}
		entries = append(entries, page.SecretList...)
		// Keep going while a token comes back, even after an empty page: the service may filter
		// after it pages.
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	return entries, nil
}

// matchIDs pairs each id with the listed secret it names: by ARN, else by name, else as an ARN
// without the six random characters Secrets Manager appends (a partial ARN). The order matters
// because a partial ARN can be ambiguous (AWS's warning): the full ARN of secret a (…:a-XXXXXX)
// is also the partial ARN of a secret named a-XXXXXX; the exact ARN wins, as in the service.
func matchIDs(ids []string, entries []types.SecretListEntry) []listed {
	byARN, byName := map[string]int{}, map[string]int{}
	byPartial := map[string][]int{}
	for i, e := range entries {
		arn := aws.ToString(e.ARN)
		byARN[arn], byName[aws.ToString(e.Name)] = i, i
		if p, ok := partialARN(arn); ok {
			byPartial[p] = append(byPartial[p], i)
		}
	}
	var out []listed
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		i, ok := byARN[id]
		if !ok {
			i, ok = byName[id]
		}
		if !ok && len(byPartial[id]) == 1 {
			i, ok = byPartial[id][0], true
		}
		if ok {
			out = append(out, listed{id: id, entry: entries[i]})
		}
	}
	return out
}

// partialARN strips the "-" and six random characters Secrets Manager appends to a secret's
// name in its ARN.
func partialARN(arn string) (string, bool) {
	const suffix = 7
	if !strings.HasPrefix(arn, "arn:") || len(arn) <= suffix || arn[len(arn)-suffix] != '-' {
		return "", false
	}
	return arn[:len(arn)-suffix], true
}

// namePrefix is a prefix of the secret name an id names: the id itself for a name, the part
// after "secret:" for an ARN, less what may be the random suffix. ok is false for an id that
// is neither.
func namePrefix(id string) (string, bool) {
	if !strings.HasPrefix(id, "arn:") {
		return id, id != ""
	}
	parts := strings.SplitN(id, ":", 7)
	if len(parts) != 7 || parts[2] != "secretsmanager" || parts[5] != "secret" || parts[6] == "" {
		return "", false
	}
	name := parts[6]
	// A full ARN ends in -XXXXXX; a partial one may too, by its name. Dropping the last seven
	// characters in both cases still leaves a prefix of the name.
	if len(name) > 7 && name[len(name)-7] == '-' {
		name = name[:len(name)-7]
	}
	return name, true
}

// nameFilter is the ListSecrets filter on the ids' common name prefix, nil when they have none
// (or an id's name cannot be told), so foreign secrets in the account are listed only when
// they share it.
func nameFilter(ids []string) []types.Filter {
	common, first := "", true
	for _, id := range ids {
		p, ok := namePrefix(id)
		if !ok {
			return nil
		}
		if first {
			common, first = p, false
			continue
		}
		n := 0
		for n < len(common) && n < len(p) && common[n] == p[n] {
			n++
		}
		common = common[:n]
		if common == "" {
			return nil
		}
	}
	common = common[:min(len(common), maxFilterValue)]
	// A leading ! would negate the filter; names cannot hold one, but an id is the caller's.
	if common == "" || strings.HasPrefix(common, "!") || !filterValue(common) {
		return nil
	}
	return []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{common}}}
}

// filterValue reports a value the Filter type's pattern admits.
func filterValue(v string) bool {
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(" :_@/+=.-!", r):
		default:
			return false
		}
	}
	return true
}

func otherTags(tags []types.Tag) int {
	n := 0
	for _, t := range tags {
		if !isStateTag(aws.ToString(t.Key)) {
			n++
		}
	}
	return n
}

// DescribeAll is Describe for each of ids, in their order: infos[i] and errs[i] answer ids[i].
// When the Store can list, it takes them from ListSecrets pages (one call per 100 secrets under
// the ids' common name prefix: 10 for 1,000 secrets); the ids the listing leaves out, and all of
// them when the Store cannot list, are described one DescribeSecret each, fetchConcurrency at a
// time. A listed Info may lag a change by up to five minutes (a secret re-encrypted with another
// key just before may be reported with its old key). The Store's own writes never change what
// an Info holds (the key, the tags not its own), so here they keep no secret from the listing.
func (s *Store) DescribeAll(ctx context.Context, ids []string) ([]Info, []error) {
	infos, errs := make([]Info, len(ids)), make([]error, len(ids))
	if len(ids) == 0 {
		return infos, errs
	}
	listed := map[string]Info{}
	entries, err := s.list1(ctx, ids, nameFilter(ids))
	switch {
	case err == nil:
		for _, l := range matchIDs(ids, entries) {
			e := l.entry
			listed[l.id] = Info{ARN: aws.ToString(e.ARN), Name: aws.ToString(e.Name), KMSKeyID: aws.ToString(e.KmsKeyId), OtherTags: otherTags(e.Tags)}
		}
	case !errors.Is(err, ErrListDenied):
		// A refusal was logged once by deny; anything else is worth a line too.
		s.log().Warn("listing secrets to describe them failed; describing each", zap.Int("secrets", len(ids)), zap.Error(err))
	}
	var rest []int
	for i, id := range ids {
		if info, ok := listed[id]; ok {
			infos[i] = info
			continue
		}
		rest = append(rest, i)
	}
	// A fixed set of workers, not a goroutine per secret: their stacks would stay with the
	// process after start-up.
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(fetchConcurrency, len(rest)) {
		wg.Go(func() {
			for i := range work {
				infos[i], errs[i] = s.Describe(ctx, ids[i])
			}
		})
	}
	for _, i := range rest {
		work <- i
	}
	close(work)
	wg.Wait()
	return infos, errs
}

// Requests returns the rotation state of each of ids whose secret carries an operator's
// rotation request tag (lwa-rotator:request-at, valid or not), keyed by the id as given: one
// ListSecrets call per 100 requesting secrets in the account, however many ids there are.
// Whether a request is still pending is the caller's to judge (rotator.RequestPending).
//
// The listing may lag a request by up to five minutes, so a request may be found a round late,
// and the caller acts on one only after a fresh Read. A listing can also still show a request
// the Store has served and removed: a secret the Store wrote in the last listLag whose listed
// tags show a pending request is read again on its own (one DescribeSecret) before it is
// reported. A secret whose tags do not decode is left out: its pass reports that.
//
// ErrListDenied when the Store cannot list (refused by IAM, remembered; or a client without the
// call): the caller then reads each secret's tags with LoadState, at the pace it chooses.
func (s *Store) Requests(ctx context.Context, ids []string) (map[string]RotationState, error) {
	out := map[string]RotationState{}
	if len(ids) == 0 {
		return out, nil
	}
	since := s.now().Add(-listLag)
	found, err := s.listFor(ctx, ids, []types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{TagRequestAt}}})
	if err != nil {
		return nil, fmt.Errorf("listing rotation requests: %w", err)
	}
	requested := func(st RotationState) bool { return !st.Request.At.IsZero() || st.Request.Invalid }
	for _, l := range found {
		st, err := StateFromTags(l.entry.Tags)
		if err != nil {
			s.log().Debug("listed secret's rotation state does not decode", zap.String("secret", l.id), zap.Error(err))
			continue
		}
		// The tag-key filter is a prefix match: make sure it is the request tag itself.
		if !requested(st) {
			continue
		}
		// Whether the request is still owed its rotation is the rotation model's to say; a request
		// listed for a secret this store wrote lately is read fresh, served or not.
		if s.wroteSince(l.id, since) {
			if st, err = s.LoadState(ctx, l.id); err != nil {
				s.log().Debug("reading the rotation state of a secret written lately", zap.String("secret", l.id), zap.Error(err))
				continue
			}
			if !requested(st) {
				continue
			}
		}
		out[l.id] = st
	}
	return out, nil
}

// ReadListed takes snapshots of many secrets from a listing, for a caller that only needs to
// learn whether there is anything to do: ListSecrets pages (100 secrets a call, filtered on the
// ids' common name prefix) give every secret's labels, tags and key, and the records behind
// AWSCURRENT and AWSPENDING come from the version cache, else from BatchGetSecretValue (20
// current values a call) and GetSecretValue by version id for a pending one. Warm, 1,000
// secrets cost 10 calls instead of Read's 1,000.
//
// Every snapshot it returns has Listed set and may lag the vault: AWS documents that
// ListSecrets may not reflect changes from the last five minutes. Conclude only "nothing to do"
// from one; anything that would write, call out or prove something is decided on a fresh Read,
// taken under whatever serialises the caller's work on that secret, and the write methods are
// given that snapshot. The Store never answers from a listing for a secret it wrote in the last
// listLag (10 minutes), nor for one it wrote while the listing was taken: a listed snapshot
// never misses this Store's own writes, only other writers' (another replica, an operator).
//
// The map is keyed by the id as given. An id absent from it is the caller's to Read: one this
// Store wrote lately; every id when fewer than listMin (10) remain, since a listing would save
// nothing; a secret not listed (missing, not yet visible, another region or account), one
// without AWSCURRENT, one whose tags or values do not decode, one whose value the batch could
// not return or returned at another version than the listing named.
//
// The error says why nothing was listed, for the caller's log: ErrListDenied when ListSecrets
// is refused (logged once and remembered: later calls make no call) or the client cannot list.
// A refused BatchGetSecretValue is remembered too but fails nothing: uncached values are then
// read one GetSecretValue each, which still saves every DescribeSecret.
func (s *Store) ReadListed(ctx context.Context, ids []string) (map[string]Snapshot, error) {
	since := s.now().Add(-listLag)
	s.forgetWritesBefore(since)
	var quiet []string
	for _, id := range ids {
		if !s.wroteSince(id, since) {
			quiet = append(quiet, id)
		}
	}
	out := map[string]Snapshot{}
	if len(quiet) < listMin {
		return out, nil
	}
	entries, err := s.list1(ctx, quiet, nameFilter(quiet))
	if err != nil {
		return nil, fmt.Errorf("reading %d secrets from a listing: %w", len(quiet), err)
	}
	snaps := map[string]*Snapshot{}
	var needCurrent []currentWant // uncached AWSCURRENT versions
	var needPending []string      // ids whose uncached pending version is to be read
	for _, l := range matchIDs(quiet, entries) {
		e := l.entry
		st, err := StateFromTags(e.Tags)
		if err != nil {
			continue // Read reports it
		}
		labels := e.SecretVersionsToStages
		s.cache.keep(l.id, labels)
		cur := CurrentVersion(labels)
		if cur == "" {
			continue // ErrNoCurrent, which Read reports
		}
		snap := &Snapshot{SecretID: l.id, Labels: labels, State: st, KMSKeyID: aws.ToString(e.KmsKeyId), OtherTags: otherTags(e.Tags), Listed: true}
		snaps[l.id] = snap
		if r, ok := s.cache.get(l.id, cur); ok {
			snap.Current = Version{ID: cur, Record: r, Stages: labels[cur]}
		} else {
			needCurrent = append(needCurrent, currentWant{id: l.id, arn: aws.ToString(e.ARN), version: cur})
		}
		if p := PendingVersion(labels); p != "" {
			if r, ok := s.cache.get(l.id, p); ok {
				snap.Pending = &Version{ID: p, Record: r, Stages: labels[p]}
			} else {
				needPending = append(needPending, l.id)
			}
		}
	}
	failed, err := s.fetch(ctx, snaps, needCurrent, needPending)
	if err != nil {
		return nil, fmt.Errorf("reading %d secrets from a listing: %w", len(quiet), err)
	}
	for id, snap := range snaps {
		// A write this Store made while the listing was taken may be missing from it.
		if !failed[id] && !s.wroteSince(id, since) {
			out[id] = *snap
		}
	}
	return out, nil
}

// currentWant is one uncached AWSCURRENT version ReadListed needs.
type currentWant struct{ id, arn, version string }

// fetch fills in the uncached records of snaps, a bounded number of calls at a time, and
// returns the ids it could not fill. Only the context's end (or a failure of a whole batch
// other than a refusal) is an error.
func (s *Store) fetch(ctx context.Context, snaps map[string]*Snapshot, cur []currentWant, pending []string) (map[string]bool, error) {
	var mu sync.Mutex // guards failed, singles, firstErr and the snapshots; never held across a call
	failed := map[string]bool{}
	var singles []currentWant
	var firstErr error
	fail := func(ids ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			failed[id] = true
		}
	}
	setErr := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	// Calls are queued, then made by a fixed set of workers (drain): a goroutine per call would
	// leave its stack with the process after start-up.
	var tasks []func()
	run := func(f func()) { tasks = append(tasks, f) }
	drain := func() {
		work := make(chan func())
		var wg sync.WaitGroup
		for range min(fetchConcurrency, len(tasks)) {
			wg.Go(func() {
				for f := range work {
					if ctx.Err() == nil {
						f()
					}
				}
			})
		}
		for _, f := range tasks {
			work <- f
		}
		close(work)
		wg.Wait()
		tasks = nil
	}

	batch := func(l Lister, chunk []currentWant) {
		got, err := s.batchGet(ctx, l, chunk)
		switch {
		case errors.Is(err, ErrListDenied):
			mu.Lock()
			singles = append(singles, chunk...)
			mu.Unlock()
			return
		case errors.Is(err, ErrNotFound):
			// moto fails the whole batch for one missing secret (AWS reports it beside the
			// others): the chunk's ids are read with Read.
			fail(idsOf(chunk)...)
			return
		case err != nil:
			setErr(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, w := range chunk {
			v, ok := got[w.id]
			if !ok {
				failed[w.id] = true
				continue
			}
			v.Stages = snaps[w.id].Labels[v.ID]
			snaps[w.id].Current = v
		}
	}
	l, ok := s.SM.(Lister)
	if !ok || s.batchDeniedErr() != nil {
		singles = cur
	} else if len(cur) > 0 {
		// The first batch runs alone, so a refusal costs one call, not one per worker.
		all := slices.Collect(slices.Chunk(cur, batchPage))
		batch(l, all[0])
		if s.batchDeniedErr() != nil {
			for _, c := range all[1:] {
				singles = append(singles, c...)
			}
		} else {
			for _, chunk := range all[1:] {
				run(func() { batch(l, chunk) })
			}
		}
	}
	for _, id := range pending {
		snap := snaps[id]
		p := PendingVersion(snap.Labels)
		run(func() {
			v, err := s.version(ctx, id, p, snap.Labels)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[id] = true
				return
			}
			snap.Pending = &v
		})
	}
	drain()
	// Singles only exist once a batch was refused, so they start after every batch ended.
	for _, w := range singles {
		snap := snaps[w.id]
		run(func() {
			v, err := s.version(ctx, w.id, w.version, snap.Labels)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[w.id] = true
				return
			}
			snap.Current = v
		})
	}
	drain()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return failed, nil
}

// batchGet reads the AWSCURRENT values of one chunk in one BatchGetSecretValue and caches them.
// A value is kept only when its version is the one the listing named; per-secret errors leave
// their ids out of the result.
func (s *Store) batchGet(ctx context.Context, l Lister, chunk []currentWant) (map[string]Version, error) {
	arns := make([]string, 0, len(chunk))
	byARN := map[string][]currentWant{}
	for _, w := range chunk {
		if _, ok := byARN[w.arn]; !ok {
			arns = append(arns, w.arn)
		}
		byARN[w.arn] = append(byARN[w.arn], w)
	}
	res, err := l.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: arns})
	if err != nil {
		if isAccessDenied(err) {
			return nil, s.deny(opBatchGet, idsOf(chunk), err)
		}
		return nil, fmt.Errorf("reading the current values of %d secrets: %w", len(arns), mapErr(err))
	}
	out := map[string]Version{}
	for _, e := range res.SecretValues {
		for _, w := range byARN[aws.ToString(e.ARN)] {
			if aws.ToString(e.VersionId) != w.version {
				// AWSCURRENT moved since the listing: the snapshot would mix two moments.
				continue
			}
			v, err := s.toVersion(w.id, &secretsmanager.GetSecretValueOutput{VersionId: e.VersionId, SecretString: e.SecretString, VersionStages: e.VersionStages})
			if err != nil {
				s.log().Debug("batched secret value does not decode", zap.String("secret", w.id), zap.String("version", w.version), zap.Error(err))
				continue
			}
			s.cache.put(w.id, w.version, v.Record)
			out[w.id] = Version{ID: w.version, Record: v.Record}
		}
	}
	for _, e := range res.Errors {
		s.log().Debug("batched read of a secret failed", zap.String("secret", aws.ToString(e.SecretId)), zap.String("code", aws.ToString(e.ErrorCode)))
	}
	return out, nil
}

func idsOf(ws []currentWant) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.id
	}
	return out
}
