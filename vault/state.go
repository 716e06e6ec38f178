package vault

import (
	"context"
	"errors"
	"fmt"
	"regexp"
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
}

// Tag keys holding RotationState; README.md documents them for operators.
const (
	TagRequestedAt   = "lwa-rotator:requested-at"
	TagNextAttemptAt = "lwa-rotator:next-attempt-at"
	TagNoticedExpiry = "lwa-rotator:noticed-expiry"
	TagLastCallAt    = "lwa-rotator:last-call-at"
	TagAttempts      = "lwa-rotator:attempts"
	TagRotationID    = "lwa-rotator:rotation-id"
)

// StateTags are every tag key the daemon may write, so a secret must leave room for all of them.
var StateTags = []string{TagRequestedAt, TagNextAttemptAt, TagNoticedExpiry, TagLastCallAt, TagAttempts, TagRotationID}

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
	var st RotationState
	for _, t := range d.Tags {
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
		}
		if err != nil {
			return RotationState{}, fmt.Errorf("reading rotation state of secret %s: tag %s=%q: %w: %w", secretID, k, v, ErrMalformed, err)
		}
	}
	st.RequestedAt, st.NextAttemptAt, st.NoticedExpiry = utc(st.RequestedAt), utc(st.NextAttemptAt), utc(st.NoticedExpiry)
	st.LastCallAt = utc(st.LastCallAt)
	return st, nil
}

// SaveState writes st as tags: non-zero fields are tagged, zero fields untagged. Tagging and
// untagging are two calls, so a failure between them can leave old zeroed fields behind; the
// caller retries SaveState until it succeeds.
func (s *Store) SaveState(ctx context.Context, secretID string, st RotationState) error {
	if st.Attempts < 0 {
		return fmt.Errorf("saving rotation state of secret %s: negative attempts %d", secretID, st.Attempts)
	}
	if len(st.RotationID) > maxTagValue || !legalTagValue.MatchString(st.RotationID) {
		return fmt.Errorf("saving rotation state of secret %s: rotation id %q is not a legal tag value", secretID, st.RotationID)
	}
	fields := []struct{ key, value string }{
		{TagRequestedAt, tagTime(st.RequestedAt)},
		{TagNextAttemptAt, tagTime(st.NextAttemptAt)},
		{TagNoticedExpiry, tagTime(st.NoticedExpiry)},
		{TagLastCallAt, tagTime(st.LastCallAt)},
		{TagAttempts, tagInt(st.Attempts)},
		{TagRotationID, st.RotationID},
	}
	var set []types.Tag
	var unset []string
	for _, f := range fields {
		if f.value == "" {
			unset = append(unset, f.key)
			continue
		}
		set = append(set, types.Tag{Key: aws.String(f.key), Value: aws.String(f.value)})
	}
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
