package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.uber.org/zap"
)

// Stage puts r as AWSPENDING under token (use TokenFor). It is idempotent: a token that already
// holds the same bytes succeeds, one holding different bytes fails with ErrTokenConflict. We
// compare the bytes ourselves rather than trust the service's token check, which not every
// implementation of the API enforces. Afterwards AWSPENDING is on token, whoever held it before.
func (s *Store) Stage(ctx context.Context, secretID, token string, r Record) error {
	want, err := Encode(r, s.format())
	if err != nil {
		return fmt.Errorf("staging version %s of secret %s: %w", token, secretID, err)
	}
	log := s.log().With(zap.String("secret", secretID), zap.String("version", token))

	same, err := s.sameBytes(ctx, secretID, token, want)
	switch {
	case errors.Is(err, ErrNotFound):
		if err := s.put(ctx, secretID, token, want); err != nil {
			return err
		}
		log.Debug("put secret version", zap.String("stage", StagePending))
	case err != nil:
		return fmt.Errorf("staging version %s of secret %s: %w", token, secretID, err)
	case !same:
		return fmt.Errorf("staging version %s of secret %s: %w", token, secretID, ErrTokenConflict)
	default:
		log.Debug("secret version already exists with the same value")
	}
	return s.ensurePending(ctx, secretID, token)
}

// sameBytes reports whether version token exists holding want; ErrNotFound when it does not.
// The same record in the other secretFormat counts as the same: the format may have changed by a
// restart between two deliveries of one message, and the genuine secret must not be refused as a
// token conflict (the version keeps the shape it was first put in; the next rotation writes the
// new one).
func (s *Store) sameBytes(ctx context.Context, secretID, token string, want []byte) (bool, error) {
	out, err := s.getByID(ctx, secretID, token)
	if err != nil {
		return false, err
	}
	if out.SecretString == nil {
		return false, nil
	}
	got := []byte(*out.SecretString)
	if bytes.Equal(got, want) {
		return true, nil
	}
	return sameRecord(got, want), nil
}

// sameRecord compares two stored values as records, whatever their format.
func sameRecord(a, b []byte) bool {
	ra, errA := Decode(a, FormatDefault)
	rb, errB := Decode(b, FormatDefault)
	return errA == nil && errB == nil && ra.Same(rb)
}

func (s *Store) put(ctx context.Context, secretID, token string, b []byte) error {
	_, err := s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(secretID),
		ClientRequestToken: aws.String(token),
		SecretString:       aws.String(string(b)),
		VersionStages:      []string{StagePending},
	})
	var exists *types.ResourceExistsException
	if errors.As(err, &exists) {
		// Another replica put this token between our read and our put: only its bytes decide.
		same, rerr := s.sameBytes(ctx, secretID, token, b)
		if rerr == nil && same {
			return nil
		}
		return fmt.Errorf("putting version %s of secret %s: %w: %w", token, secretID, ErrTokenConflict, err)
	}
	if err != nil {
		return fmt.Errorf("putting version %s of secret %s: %w", token, secretID, mapErr(err))
	}
	return nil
}

// ensurePending moves AWSPENDING onto versionID unless it is already there.
func (s *Store) ensurePending(ctx context.Context, secretID, versionID string) error {
	d, err := s.describe(ctx, secretID)
	if err != nil {
		return fmt.Errorf("checking %s of secret %s: %w", StagePending, secretID, err)
	}
	from := holder(d.VersionIdsToStages, StagePending)
	if from == versionID {
		return nil
	}
	return s.moveStage(ctx, secretID, StagePending, versionID, from)
}

// Promote moves AWSCURRENT from fromVersionID to versionID (the service moves AWSPREVIOUS to
// fromVersionID) and then removes AWSPENDING from versionID. It is a compare-and-set: if
// AWSCURRENT is no longer on fromVersionID (another replica promoted something meanwhile) it
// fails with ErrCurrentMoved and changes nothing, so the caller can judge the order again;
// RemoveFromVersionId makes Secrets Manager enforce the same. If versionID is already current it
// only clears AWSPENDING, so a retry after a crash between the two steps finishes the job.
func (s *Store) Promote(ctx context.Context, secretID, versionID, fromVersionID string) error {
	d, err := s.describe(ctx, secretID)
	if err != nil {
		return fmt.Errorf("promoting version %s of secret %s: %w", versionID, secretID, err)
	}
	from := holder(d.VersionIdsToStages, StageCurrent)
	if from != versionID {
		if from != fromVersionID {
			return fmt.Errorf("promoting version %s of secret %s: %w (now on %q, expected %q)", versionID, secretID, ErrCurrentMoved, from, fromVersionID)
		}
		if err := s.moveStage(ctx, secretID, StageCurrent, versionID, from); err != nil {
			// A replica may have promoted the same version first, which makes our
			// RemoveFromVersionId stale; that is success, not failure.
			if again, derr := s.describe(ctx, secretID); derr != nil ||
				holder(again.VersionIdsToStages, StageCurrent) != versionID {
				return err
			}
		}
	}
	return s.ClearPending(ctx, secretID, versionID)
}

// ClearPending removes AWSPENDING from versionID; it does nothing if the label is elsewhere or
// absent.
func (s *Store) ClearPending(ctx context.Context, secretID, versionID string) error {
	d, err := s.describe(ctx, secretID)
	if err != nil {
		return fmt.Errorf("clearing %s from version %s of secret %s: %w", StagePending, versionID, secretID, err)
	}
	if !slices.Contains(d.VersionIdsToStages[versionID], StagePending) {
		return nil
	}
	_, err = s.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:            aws.String(secretID),
		VersionStage:        aws.String(StagePending),
		RemoveFromVersionId: aws.String(versionID),
	})
	if err != nil {
		return fmt.Errorf("clearing %s from version %s of secret %s: %w", StagePending, versionID, secretID, mapErr(err))
	}
	s.log().Debug("cleared staging label", zap.String("secret", secretID), zap.String("version", versionID),
		zap.String("stage", StagePending))
	return nil
}

// moveStage moves stage to versionID, naming the version that holds it now (from, "" if none),
// as the service requires.
func (s *Store) moveStage(ctx context.Context, secretID, stage, versionID, from string) error {
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:        aws.String(secretID),
		VersionStage:    aws.String(stage),
		MoveToVersionId: aws.String(versionID),
	}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	if _, err := s.SM.UpdateSecretVersionStage(ctx, in); err != nil {
		return fmt.Errorf("moving %s of secret %s from version %q to %s: %w", stage, secretID, from, versionID, mapErr(err))
	}
	s.log().Debug("moved staging label", zap.String("secret", secretID), zap.String("stage", stage),
		zap.String("from", from), zap.String("to", versionID))
	return nil
}
