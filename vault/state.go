package vault

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.uber.org/zap"
)

// RotationState is the daemon's own bookkeeping for one secret. It lives in tags on the secret
// rather than in memory or a local file, so it survives restarts and replicas share it.
type RotationState struct {
	RequestedAt   time.Time
	NextAttemptAt time.Time
	NoticedExpiry time.Time
	// LastCallAt is when the latest rotate call was about to be made, whatever came of it: the
	// watchdog clears RequestedAt, never this, so a secret minted before it can be recognised.
	LastCallAt time.Time
	Attempts   int
	RotationID string
	// ServedRequest is the Request.At a rotation was started for, so a request is served once
	// whatever the daemon's and the operator's clocks say (lwa-rotator:served-request).
	ServedRequest time.Time
	// InHand is a replica's word that it holds the new secret of the rotation in flight but could
	// not yet store it: no replica asks Amazon again before it lapses (the holder renews it with
	// every failed try). Zero when no replica has said so.
	InHand Lease
	// Probe is the fleet's latest verdict of LWA on a current version, so that one replica's
	// probe serves all of them.
	Probe Probe
	// Request is an operator's rotation request (lwa-rotator rotate). LoadState fills it;
	// SaveChanges never writes or removes it, so a request written while the daemon holds an older
	// copy of the state survives; only ClearRequest removes it.
	Request RotationRequest
}

// Lease is a holder's word that lasts until a time.
type Lease struct {
	Until time.Time
	By    string // the holder (pod, task or host, and its process)
}

// Live reports whether the lease holds at now.
func (l Lease) Live(now time.Time) bool { return now.Before(l.Until) }

// Probe is what LWA said of a version of the secret, and when.
type Probe struct {
	At        time.Time
	Valid     bool
	VersionID string
}

// RotationRequest is an operator's request to rotate one application now.
type RotationRequest struct {
	At     time.Time // the operator's clock, when the request was written
	By     string    // who asked (user@host), informational
	Reason string    // why, informational
	// Invalid: a request-at tag is there but does not parse; it is never served, only removed.
	Invalid bool
}

// Tag keys holding RotationState; README.md documents them for operators.
const (
	TagRequestedAt   = "lwa-rotator:requested-at"
	TagNextAttemptAt = "lwa-rotator:next-attempt-at"
	TagNoticedExpiry = "lwa-rotator:noticed-expiry"
	TagLastCallAt    = "lwa-rotator:last-call-at"
	TagAttempts      = "lwa-rotator:attempts"
	TagRotationID    = "lwa-rotator:rotation-id"
	TagServedRequest = "lwa-rotator:served-request"
	TagSecretInHand  = "lwa-rotator:secret-in-hand"
	TagProbed        = "lwa-rotator:probed"
)

// Tag keys of a rotation request. The operator's `lwa-rotator rotate` writes them (and may
// write nothing else: see deploy/iam/operator-policy.json); the daemon removes them.
const (
	TagRequestAt     = "lwa-rotator:request-at"
	TagRequestBy     = "lwa-rotator:request-by"
	TagRequestReason = "lwa-rotator:request-reason"
)

// RequestTagKeys are the keys RequestTags writes.
var RequestTagKeys = []string{TagRequestAt, TagRequestBy, TagRequestReason}

// StateTags are every tag key the daemon may write, so a secret must leave room for all of them.
var StateTags = []string{TagRequestedAt, TagNextAttemptAt, TagNoticedExpiry, TagLastCallAt, TagAttempts, TagRotationID,
	TagServedRequest, TagSecretInHand, TagProbed, TagRequestAt, TagRequestBy, TagRequestReason}

// MaxTags is Secrets Manager's limit of tags on one secret.
const MaxTags = 50

// ErrNoTagRoom marks a secret whose own tags leave no room for the daemon's: its rotation state
// cannot be saved, and retrying does not help until someone removes tags.
var ErrNoTagRoom = errors.New("no room for the daemon's tags")

// isStateTag reports whether key is one the daemon owns.
func isStateTag(key string) bool { return strings.HasPrefix(key, "lwa-rotator:") }

// legalTagValue is the character set Secrets Manager accepts in tag values.
var legalTagValue = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)

const maxTagValue = 256

// LoadState reads the rotation state from the secret's tags; absent tags give zero fields.
func (s *Store) LoadState(ctx context.Context, secretID string) (RotationState, error) {
	d, err := s.describe(ctx, secretID)
	if err != nil {
		return RotationState{}, fmt.Errorf("reading rotation state of secret %s: %w", secretID, err)
	}
	st, err := StateFromTags(d.Tags)
	if err != nil {
		return RotationState{}, fmt.Errorf("reading rotation state of secret %s: %w", secretID, err)
	}
	return st, nil
}

// StateFromTags decodes the rotation state from a secret's tags (DescribeSecret's Tags), for
// callers that describe the secret themselves. A value that does not parse is ErrMalformed.
func StateFromTags(tags []types.Tag) (RotationState, error) {
	var st RotationState
	for _, t := range tags {
		k, v := aws.ToString(t.Key), aws.ToString(t.Value)
		var err error
		switch k {
		case TagRequestedAt:
			st.RequestedAt, err = time.Parse(time.RFC3339Nano, v)
		case TagNextAttemptAt:
			st.NextAttemptAt, err = time.Parse(time.RFC3339Nano, v)
		case TagNoticedExpiry:
			st.NoticedExpiry, err = time.Parse(time.RFC3339Nano, v)
		case TagLastCallAt:
			st.LastCallAt, err = time.Parse(time.RFC3339Nano, v)
		case TagAttempts:
			st.Attempts, err = strconv.Atoi(v)
			if err == nil && st.Attempts < 0 {
				err = fmt.Errorf("negative count")
			}
		case TagRotationID:
			st.RotationID = v
		case TagServedRequest:
			st.ServedRequest, err = time.Parse(time.RFC3339Nano, v)
		case TagSecretInHand:
			st.InHand, err = parseLease(v)
		case TagProbed:
			st.Probe, err = parseProbe(v)
		case TagRequestAt:
			// Written by operators, not by the daemon: a bad value must not stop rotations, so
			// it is marked for removal instead of failing the whole state.
			if at, perr := time.Parse(time.RFC3339Nano, v); perr == nil {
				st.Request.At = at
			} else {
				st.Request.Invalid = true
			}
		case TagRequestBy:
			st.Request.By = v
		case TagRequestReason:
			st.Request.Reason = v
		}
		if err != nil {
			return RotationState{}, fmt.Errorf("tag %s=%q: %w: %w", k, v, ErrMalformed, err)
		}
	}
	st.RequestedAt, st.NextAttemptAt, st.NoticedExpiry = utc(st.RequestedAt), utc(st.NextAttemptAt), utc(st.NoticedExpiry)
	st.LastCallAt, st.ServedRequest, st.Request.At = utc(st.LastCallAt), utc(st.ServedRequest), utc(st.Request.At)
	return st, nil
}

// parseLease reads "<until> <holder>".
func parseLease(v string) (Lease, error) {
	at, by, _ := strings.Cut(v, " ")
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return Lease{}, err
	}
	return Lease{Until: t.UTC(), By: by}, nil
}

func leaseTag(l Lease) string {
	if l.Until.IsZero() {
		return ""
	}
	return strings.TrimSpace(tagTime(l.Until) + " " + l.By)
}

// parseProbe reads "<at> valid|invalid <version id>".
func parseProbe(v string) (Probe, error) {
	f := strings.Fields(v)
	if len(f) != 3 || (f[1] != "valid" && f[1] != "invalid") {
		return Probe{}, fmt.Errorf("want a time, valid or invalid, and a version id")
	}
	t, err := time.Parse(time.RFC3339Nano, f[0])
	if err != nil {
		return Probe{}, err
	}
	return Probe{At: t.UTC(), Valid: f[1] == "valid", VersionID: f[2]}, nil
}

func probeTag(p Probe) string {
	if p.At.IsZero() {
		return ""
	}
	verdict := "invalid"
	if p.Valid {
		verdict = "valid"
	}
	return tagTime(p.At) + " " + verdict + " " + p.VersionID
}

// RequestTags renders r as the tags `lwa-rotator rotate` writes. By and Reason must be legal
// tag values (letters, digits, spaces and _ . : / = + - @, at most 256 characters).
func RequestTags(r RotationRequest) ([]types.Tag, error) {
	if r.At.IsZero() {
		return nil, fmt.Errorf("rotation request: the time is required")
	}
	for _, f := range []struct{ name, v string }{{"requester", r.By}, {"reason", r.Reason}} {
		if len(f.v) > maxTagValue || !legalTagValue.MatchString(f.v) {
			return nil, fmt.Errorf("rotation request: the %s is not a legal tag value (at most %d letters, digits, spaces and _ . : / = + - @)", f.name, maxTagValue)
		}
	}
	tags := []types.Tag{{Key: aws.String(TagRequestAt), Value: aws.String(tagTime(r.At))}}
	if r.By != "" {
		tags = append(tags, types.Tag{Key: aws.String(TagRequestBy), Value: aws.String(r.By)})
	}
	if r.Reason != "" {
		tags = append(tags, types.Tag{Key: aws.String(TagRequestReason), Value: aws.String(r.Reason)})
	}
	return tags, nil
}

// ClearRequest removes a rotation request and the daemon's note that it was served.
func (s *Store) ClearRequest(ctx context.Context, secretID string) error {
	keys := append(slices.Clone(RequestTagKeys), TagServedRequest)
	s.noteWrite(secretID)
	if _, err := s.SM.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(secretID), TagKeys: keys}); err != nil {
		return fmt.Errorf("clearing the rotation request on secret %s: %w", secretID, mapErr(err))
	}
	s.log().Debug("cleared rotation request", zap.String("secret", secretID))
	return nil
}

// SaveChanges writes only the fields of st that differ from was (the state the caller's snapshot
// read): a save that sets fields is one TagResource, one that only clears fields one
// UntagResource, one that does both the two calls, and one that changes nothing makes no call.
// A failure between the two calls leaves the cleared fields behind; the caller saves again.
func (s *Store) SaveChanges(ctx context.Context, secretID string, was, st RotationState) error {
	if st.Attempts < 0 {
		return fmt.Errorf("saving rotation state of secret %s: negative attempts %d", secretID, st.Attempts)
	}
	if len(st.RotationID) > maxTagValue || !legalTagValue.MatchString(st.RotationID) {
		return fmt.Errorf("saving rotation state of secret %s: rotation id %q is not a legal tag value", secretID, st.RotationID)
	}
	for _, f := range []struct{ name, v string }{{"secret-in-hand", leaseTag(st.InHand)}, {"probe", probeTag(st.Probe)}} {
		if len(f.v) > maxTagValue || !legalTagValue.MatchString(f.v) {
			return fmt.Errorf("saving rotation state of secret %s: the %s record is not a legal tag value", secretID, f.name)
		}
	}
	old := stateTagValues(was)
	var set []types.Tag
	var unset []string
	for _, f := range stateFields(st) {
		if old[f.key] == f.value {
			continue
		}
		if f.value == "" {
			unset = append(unset, f.key)
			continue
		}
		set = append(set, types.Tag{Key: aws.String(f.key), Value: aws.String(f.value)})
	}
	if len(set)+len(unset) == 0 {
		return nil
	}
	s.noteWrite(secretID)
	if len(set) > 0 {
		_, err := s.SM.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(secretID), Tags: set})
		if err != nil {
			if s.noTagRoom(ctx, secretID) {
				return fmt.Errorf("tagging rotation state on secret %s: its own tags leave fewer than %d of Secrets Manager's %d for the daemon; remove some: %w",
					secretID, len(StateTags), MaxTags, ErrNoTagRoom)
			}
			return fmt.Errorf("tagging rotation state on secret %s: %w", secretID, mapErr(err))
		}
	}
	if len(unset) > 0 {
		_, err := s.SM.UntagResource(ctx, &secretsmanager.UntagResourceInput{SecretId: aws.String(secretID), TagKeys: unset})
		if err != nil {
			return fmt.Errorf("untagging rotation state on secret %s: %w", secretID, mapErr(err))
		}
	}
	s.log().Debug("saved rotation state", zap.String("secret", secretID), zap.String("rotation", st.RotationID),
		zap.Int("attempts", st.Attempts))
	return nil
}

type stateField struct{ key, value string }

// stateFields renders the daemon-written part of st as tag values ("" for a zero field).
func stateFields(st RotationState) []stateField {
	return []stateField{
		{TagRequestedAt, tagTime(st.RequestedAt)},
		{TagNextAttemptAt, tagTime(st.NextAttemptAt)},
		{TagNoticedExpiry, tagTime(st.NoticedExpiry)},
		{TagLastCallAt, tagTime(st.LastCallAt)},
		{TagAttempts, tagInt(st.Attempts)},
		{TagRotationID, st.RotationID},
		{TagServedRequest, tagTime(st.ServedRequest)},
		{TagSecretInHand, leaseTag(st.InHand)},
		{TagProbed, probeTag(st.Probe)},
	}
}

func stateTagValues(st RotationState) map[string]string {
	m := map[string]string{}
	for _, f := range stateFields(st) {
		m[f.key] = f.value
	}
	return m
}

// noTagRoom tells a full secret from a transient failure, after a tag write failed: AWS does not
// give the limit its own error code.
func (s *Store) noTagRoom(ctx context.Context, secretID string) bool {
	info, err := s.Describe(ctx, secretID)
	return err == nil && MaxTags-info.OtherTags < len(StateTags)
}

// tagTime keeps full precision so a saved state loads back equal.
func tagTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func tagInt(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
