package vault

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"go.uber.org/zap"
)

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
	s.noteWrite(secretID)
	if _, err := s.SM.UpdateSecretVersionStage(ctx, in); err != nil {
		return fmt.Errorf("moving %s of secret %s from version %q to %s: %w", stage, secretID, from, versionID, mapErr(err))
	}
	s.log().Debug("moved staging label", zap.String("secret", secretID), zap.String("stage", stage),
		zap.String("from", from), zap.String("to", versionID))
	return nil
}
