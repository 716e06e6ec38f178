package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.uber.org/zap"
)

// Snapshot is one read of a secret: which version holds which label, the records behind
// AWSCURRENT and AWSPENDING, and the daemon's tags. The rotator decides on it and the write
// methods below take what they need from it, so a rotation never describes the secret twice.
type Snapshot struct {
	SecretID string
	Current  Version
	// Pending is the version carrying AWSPENDING but not AWSCURRENT (an unfinished rotation),
	// nil when there is none.
	Pending *Version
	// Labels is DescribeSecret's VersionIdsToStages: labelled versions only.
	Labels map[string][]string
	State  RotationState
	// KMSKeyID is the key the secret is encrypted with ("" for the AWS managed key).
	KMSKeyID string
	// OtherTags counts the secret's tags that are not the daemon's.
	OtherTags int
	// Listed: the snapshot comes from ListSecrets (ReadListed), which AWS documents may not
	// reflect the last five minutes' changes. Conclude only "nothing to do" from it; whatever
	// acts is decided on a Read, whose snapshot the write methods are given.
	Listed bool
	// Claim is the claim on the rotation this snapshot shows due, when StageClaim sits on one
	// (ClaimOn); nil when no replica has claimed it. A claim whose value cannot be read has a
	// zero Until: it has lapsed. Read fills it; a listing does not.
	Claim *Claim
	// ReadAt is when the read began, by this process's clock: a claim lapsed before it was
	// read by a snapshot that shows the secret as it stood after the claim lapsed.
	ReadAt time.Time
}

// Holder returns the version carrying stage, or "".
func (s Snapshot) Holder(stage string) string { return holder(s.Labels, stage) }

// Promoted is the snapshot a successful PromoteOn(s, v.ID) leaves, by Secrets Manager's rules
// for staging labels: v carries AWSCURRENT (and keeps AWSPENDING, which no longer counts as
// pending there), the old current carries AWSPREVIOUS, and no other version is labelled but the
// claim's (whose rotation is over: AWSCURRENT moved). The
// rotator plans on it instead of reading the secret again; this package is the one place that
// knows how Secrets Manager moves labels.
func (s Snapshot) Promoted(v Version) Snapshot {
	claim := s.Holder(StageClaim)
	s.Labels = map[string][]string{v.ID: {StageCurrent, StagePending}, s.Current.ID: {StagePrevious}}
	if claim != "" {
		s.Labels[claim] = append(s.Labels[claim], StageClaim)
	}
	s.Current = Version{ID: v.ID, Record: v.Record, Stages: s.Labels[v.ID]}
	s.Pending, s.Claim = nil, nil
	return s
}

// versionCache keeps what was decoded from a version (a record, a claim) by version id. Secrets
// Manager never changes a version's value once written, so a version read once need not be read
// again: a snapshot of a secret whose labels did not move costs one DescribeSecret. Only
// labelled versions are kept.
type versionCache[T any] struct {
	mu sync.Mutex // never held across a call
	m  map[string]map[string]T
}

func (c *versionCache[T]) get(secretID, versionID string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[secretID][versionID]
	return v, ok
}

func (c *versionCache[T]) put(secretID, versionID string, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]map[string]T{}
	}
	if c.m[secretID] == nil {
		c.m[secretID] = map[string]T{}
	}
	c.m[secretID][versionID] = v
}

// keep drops the versions of secretID that are no longer labelled.
func (c *versionCache[T]) keep(secretID string, labels map[string][]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.m[secretID] {
		if len(labels[id]) == 0 {
			delete(c.m[secretID], id)
		}
	}
}

// Read takes a Snapshot: one DescribeSecret, plus one GetSecretValue for each of AWSCURRENT and
// AWSPENDING not read before. ErrNoCurrent if no version is AWSCURRENT, ErrNotFound if the
// secret does not exist.
func (s *Store) Read(ctx context.Context, secretID string) (Snapshot, error) {
	readAt := s.now()
	d, err := s.describe(ctx, secretID)
	if err != nil {
		return Snapshot{}, fmt.Errorf("reading secret %s: %w", secretID, err)
	}
	st, err := StateFromTags(d.Tags)
	if err != nil {
		return Snapshot{}, fmt.Errorf("reading rotation state of secret %s: %w", secretID, err)
	}
	snap := Snapshot{SecretID: secretID, Labels: d.VersionIdsToStages, State: st, KMSKeyID: aws.ToString(d.KmsKeyId), ReadAt: readAt}
	for _, t := range d.Tags {
		if !isStateTag(aws.ToString(t.Key)) {
			snap.OtherTags++
		}
	}
	s.cache.keep(secretID, d.VersionIdsToStages)
	s.claims.keep(secretID, d.VersionIdsToStages)
	cur := CurrentVersion(d.VersionIdsToStages)
	if cur == "" {
		return Snapshot{}, fmt.Errorf("reading %s of secret %s: %w", StageCurrent, secretID, ErrNoCurrent)
	}
	if snap.Current, err = s.version(ctx, secretID, cur, d.VersionIdsToStages); err != nil {
		return Snapshot{}, err
	}
	if id := PendingVersion(d.VersionIdsToStages); id != "" {
		p, err := s.version(ctx, secretID, id, d.VersionIdsToStages)
		if err != nil {
			return Snapshot{}, err
		}
		snap.Pending = &p
	}
	if id := snap.Holder(StageClaim); id != "" && claimFor(id, snap) {
		// Only a claim on the rotation due now is read: the label stays on the last claim made,
		// and a finished rotation's claim costs no read.
		c, err := s.claim(ctx, secretID, id)
		switch {
		case errors.Is(err, ErrMalformed):
			c = Claim{VersionID: id}
		case err != nil:
			return Snapshot{}, err
		}
		snap.Claim = &c
	}
	return snap, nil
}

func (s *Store) version(ctx context.Context, secretID, versionID string, labels map[string][]string) (Version, error) {
	if r, ok := s.cache.get(secretID, versionID); ok {
		return Version{ID: versionID, Record: r, Stages: labels[versionID]}, nil
	}
	v, err := s.byID(ctx, secretID, versionID)
	if err != nil {
		return Version{}, err
	}
	s.cache.put(secretID, versionID, v.Record)
	v.Stages = labels[versionID]
	return v, nil
}

// StageOn puts r as AWSPENDING under token, judged against snap: nothing is written when the
// snapshot shows token already pending with the same record, and ErrTokenConflict is returned
// when it holds another. Otherwise one PutSecretValue, which moves AWSPENDING from any other
// version (Secrets Manager's rule for labels given to a put). A token that names an unlabelled
// version with the same bytes makes AWS's put a no-op that attaches no label; the put's answer
// says so, and one UpdateSecretVersionStage attaches it.
func (s *Store) StageOn(ctx context.Context, snap Snapshot, token string, r Record) error {
	if p := snap.Pending; p != nil && p.ID == token {
		if !p.Record.Same(r) {
			return fmt.Errorf("staging version %s of secret %s: %w", token, snap.SecretID, ErrTokenConflict)
		}
		return nil
	}
	want, err := Encode(r, s.format())
	if err != nil {
		return fmt.Errorf("staging version %s of secret %s: %w", token, snap.SecretID, err)
	}
	s.noteWrite(snap.SecretID)
	out, err := s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(snap.SecretID),
		ClientRequestToken: aws.String(token),
		SecretString:       aws.String(string(want)),
		VersionStages:      []string{StagePending},
	})
	var exists *types.ResourceExistsException
	switch {
	case errors.As(err, &exists):
		// The token holds other bytes; the same record in the other secretFormat is still the
		// same secret (the format may change by a restart between two deliveries).
		same, rerr := s.sameBytes(ctx, snap.SecretID, token, want)
		if rerr != nil || !same {
			return fmt.Errorf("putting version %s of secret %s: %w: %w", token, snap.SecretID, ErrTokenConflict, err)
		}
	case err != nil:
		return fmt.Errorf("putting version %s of secret %s: %w", token, snap.SecretID, mapErr(err))
	case slices.Contains(out.VersionStages, StagePending):
		s.cache.put(snap.SecretID, token, r)
		s.log().Debug("put secret version", zap.String("secret", snap.SecretID), zap.String("version", token), zap.String("stage", StagePending))
		return nil
	}
	if err := s.moveStage(ctx, snap.SecretID, StagePending, token, snap.Holder(StagePending)); err != nil {
		return fmt.Errorf("staging version %s of secret %s: %w", token, snap.SecretID, err)
	}
	return nil
}

// PromoteOn moves AWSCURRENT from the snapshot's current version to versionID in one call;
// Secrets Manager moves AWSPREVIOUS to the old current. RemoveFromVersionId makes it a
// compare-and-set: if another replica moved AWSCURRENT since the snapshot, AWS refuses and the
// caller judges again on a new snapshot. AWSPENDING stays on the promoted version, where it no
// longer counts as pending (Secrets Manager's own rotation treats a version holding both as a
// finished rotation); the next put moves it.
func (s *Store) PromoteOn(ctx context.Context, snap Snapshot, versionID string) error {
	if snap.Current.ID == versionID {
		return nil
	}
	if err := s.moveStage(ctx, snap.SecretID, StageCurrent, versionID, snap.Current.ID); err != nil {
		return fmt.Errorf("promoting version %s of secret %s: %w", versionID, snap.SecretID, err)
	}
	return nil
}

// ClearPendingOn removes AWSPENDING from versionID when the snapshot (or a put made since, see
// staged) shows it there; one call at most.
func (s *Store) ClearPendingOn(ctx context.Context, snap Snapshot, versionID string, staged bool) error {
	if !staged && !slices.Contains(snap.Labels[versionID], StagePending) {
		return nil
	}
	s.noteWrite(snap.SecretID)
	_, err := s.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:            aws.String(snap.SecretID),
		VersionStage:        aws.String(StagePending),
		RemoveFromVersionId: aws.String(versionID),
	})
	if err != nil {
		return fmt.Errorf("clearing %s from version %s of secret %s: %w", StagePending, versionID, snap.SecretID, mapErr(err))
	}
	return nil
}
