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
// Store remembers it for the process's life and makes no further listing call; callers read each
// secret on its own (Read, LoadState, Describe), at what that costs.
var ErrListDenied = errors.New("vault: listing secrets is denied")

// The API's page limits.
const (
	listPage  = 100 // ListSecrets MaxResults
	batchPage = 20  // BatchGetSecretValue SecretIdList
	// maxFilterValue is the longest value a ListSecrets filter takes.
	maxFilterValue = 512
	// fetchConcurrency bounds the value reads of one ReadMany, as checkConcurrency does the
	// at-rest check's.
	fetchConcurrency = 8
)

// listing is what the Store remembers about the account-wide calls. Its lock is never held
// across a call.
type listing struct {
	mu sync.Mutex
	// denied is the first ListSecrets refusal (wrapping ErrListDenied), batchDenied the first
	// BatchGetSecretValue refusal; nil while allowed.
	denied, batchDenied error
	// handed is DescribeMany's listing, kept for the next ReadMany of the same filter.
	handed handoff
}

// handoff is one listing passed from the at-rest check to the pass after it, so a start-up
// lists the secrets once. It serves one ReadMany, within handoffFor of being taken: far inside
// the five minutes a listing may lag anyway, and dropped once used, so the store does not keep a
// thousand entries for its life.
type handoff struct {
	filter  string
	at      time.Time
	entries []types.SecretListEntry
}

const handoffFor = 30 * time.Second

func filterKey(filters []types.Filter) string { return fmt.Sprint(filters) }

// takeHandoff returns the entries DescribeMany left for filters, if fresh enough, and forgets them.
func (s *Store) takeHandoff(filters []types.Filter) ([]types.SecretListEntry, bool) {
	s.list.mu.Lock()
	defer s.list.mu.Unlock()
	h := s.list.handed
	s.list.handed = handoff{}
	if h.entries == nil || h.filter != filterKey(filters) || s.now().Sub(h.at) > handoffFor {
		return nil, false
	}
	return h.entries, true
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

// listFor lists the secrets of ids, one call per page of 100, filtered on their common name
// prefix when they have one, and matches each entry to the ids naming it. ids not listed are
// absent from the result.
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

// DescribeMany returns what Describe does for many secrets from ListSecrets pages: one call
// per 100 listed secrets. An id that is not listed is absent (the caller describes it on its
// own); ErrListDenied when the listing is refused.
func (s *Store) DescribeMany(ctx context.Context, ids []string) (map[string]Info, error) {
	out := map[string]Info{}
	if len(ids) == 0 {
		return out, nil
	}
	filters := nameFilter(ids)
	at := s.now()
	entries, err := s.list1(ctx, ids, filters)
	if err != nil {
		return nil, fmt.Errorf("describing %d secrets: %w", len(ids), err)
	}
	s.list.mu.Lock()
	s.list.handed = handoff{filter: filterKey(filters), at: at, entries: entries}
	s.list.mu.Unlock()
	found := matchIDs(ids, entries)
	for _, l := range found {
		e := l.entry
		out[l.id] = Info{ARN: aws.ToString(e.ARN), Name: aws.ToString(e.Name), KMSKeyID: aws.ToString(e.KmsKeyId), OtherTags: otherTags(e.Tags)}
	}
	return out, nil
}

// Requests returns the rotation state of each configured secret that carries an operator's
// rotation request tag (lwa-rotator:request-at, valid or not), keyed by the id as given: one
// ListSecrets call per 100 requesting secrets in the account, however many ids there are.
// Whether a request is still pending is the caller's to judge (RotationState.RequestPending).
// The listing may lag a request or its clearing by up to five minutes (see ReadMany); a caller
// acts on a request only after a fresh read. A secret whose tags do not decode is left out: its
// pass reports that. ErrListDenied when the listing is refused.
func (s *Store) Requests(ctx context.Context, ids []string) (map[string]RotationState, error) {
	out := map[string]RotationState{}
	if len(ids) == 0 {
		return out, nil
	}
	found, err := s.listFor(ctx, ids, []types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{TagRequestAt}}})
	if err != nil {
		return nil, fmt.Errorf("listing rotation requests: %w", err)
	}
	for _, l := range found {
		st, err := StateFromTags(l.entry.Tags)
		if err != nil {
			s.log().Debug("listed secret's rotation state does not decode", zap.String("secret", l.id), zap.Error(err))
			continue
		}
		// The tag-key filter is a prefix match: make sure it is the request tag itself.
		if st.Request.At.IsZero() && !st.Request.Invalid {
			continue
		}
		out[l.id] = st
	}
	return out, nil
}

// ReadMany takes the snapshots of many secrets with few calls: ListSecrets pages (100 secrets
// each, filtered on the ids' common name prefix) give every secret's labels, tags and key; the
// records behind AWSCURRENT and AWSPENDING come from the version cache, else from
// BatchGetSecretValue (20 current versions a call) and GetSecretValue by version id for a
// pending one. Warm, 1,000 secrets cost 10 calls instead of Read's 1,000.
//
// The map is keyed by the id as given. An id it cannot snapshot this way is simply absent, and
// the caller reads it with Read: a secret not listed (missing, not yet visible, another region
// or account), one without AWSCURRENT, one whose tags or values do not decode, one whose value
// the batch could not return or returned at another version than the listing named.
//
// ListSecrets is eventually consistent: AWS documents that it may not reflect changes from the
// last five minutes. A snapshot from ReadMany may therefore lag a write; callers conclude only
// "nothing to do" from it and take a fresh Read before any write, whose snapshot the write
// methods are given.
//
// ErrListDenied when ListSecrets is refused (remembered: later calls return it at once). A
// refused BatchGetSecretValue is remembered too but does not fail ReadMany: uncached values are
// then read one GetSecretValue each, which still saves every DescribeSecret.
func (s *Store) ReadMany(ctx context.Context, ids []string) (map[string]Snapshot, error) {
	out := map[string]Snapshot{}
	if len(ids) == 0 {
		return out, nil
	}
	filters := nameFilter(ids)
	entries, ok := s.takeHandoff(filters)
	if !ok {
		var err error
		if entries, err = s.list1(ctx, ids, filters); err != nil {
			return nil, fmt.Errorf("reading %d secrets: %w", len(ids), err)
		}
	}
	found := matchIDs(ids, entries)
	snaps := map[string]*Snapshot{}
	var needCurrent []currentWant // uncached AWSCURRENT versions
	var needPending []string      // ids whose uncached pending version is to be read
	for _, l := range found {
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
		snap := &Snapshot{SecretID: l.id, Labels: labels, State: st, KMSKeyID: aws.ToString(e.KmsKeyId), OtherTags: otherTags(e.Tags)}
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
		return nil, fmt.Errorf("reading %d secrets: %w", len(ids), err)
	}
	for id, snap := range snaps {
		if !failed[id] {
			out[id] = *snap
		}
	}
	return out, nil
}

// currentWant is one uncached AWSCURRENT version ReadMany needs.
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
