// Package request asks the daemon, through the vault, to rotate one application now: it writes
// the lwa-rotator:request-* tags on the application's secret (one DescribeSecret and one
// TagResource), so it works from any machine with those two IAM rights and CloudTrail records
// who asked. Whichever replica of the daemon reads the tags first serves the request.
package request

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// SecretsManager is the two calls a request makes; *secretsmanager.Client satisfies it.
type SecretsManager interface {
	DescribeSecret(ctx context.Context, params *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	TagResource(ctx context.Context, params *secretsmanager.TagResourceInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
}

// ErrRefused marks a request not written because it could not be served now; the error says why.
var ErrRefused = errors.New("rotation request refused")

// rotateInterval is Amazon's limit: one rotateApplicationClientSecret call a minute per application.
const rotateInterval = time.Minute

// Snapshot is what one DescribeSecret says about the secret's rotation.
type Snapshot struct {
	CurrentVersionID string
	PendingVersionID string
	State            vault.RotationState
}

func describe(ctx context.Context, sm SecretsManager, secretID string) (Snapshot, error) {
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		return Snapshot{}, fmt.Errorf("describing secret %s: %w", secretID, err)
	}
	st, err := vault.StateFromTags(d.Tags)
	if err != nil {
		return Snapshot{}, fmt.Errorf("reading the rotation state of secret %s: %w", secretID, err)
	}
	return Snapshot{CurrentVersionID: vault.CurrentVersion(d.VersionIdsToStages),
		PendingVersionID: vault.PendingVersion(d.VersionIdsToStages), State: st}, nil
}

// Check says why a request could not be served now, or nil. It is pure.
func Check(s Snapshot, now time.Time) error {
	st := s.State
	switch {
	case s.CurrentVersionID == "":
		return fmt.Errorf("%w: the secret has no AWSCURRENT version to rotate (store one with lwa-rotator seed)", ErrRefused)
	case !st.RequestedAt.IsZero():
		return fmt.Errorf("%w: a rotation is already in flight since %s (rotation %s); its new secret is awaited", ErrRefused, stamp(st.RequestedAt), st.RotationID)
	case s.PendingVersionID != "":
		return fmt.Errorf("%w: a new secret (version %s) is staged as AWSPENDING and waits to be verified and promoted", ErrRefused, s.PendingVersionID)
	case st.RequestPending():
		by := ""
		if st.Request.By != "" {
			by = " by " + st.Request.By
		}
		return fmt.Errorf("%w: a rotation was already requested at %s%s and waits for the daemon", ErrRefused, stamp(st.Request.At), by)
	case !st.LastCallAt.IsZero() && now.Before(st.LastCallAt.Add(rotateInterval)):
		return fmt.Errorf("%w: the last rotate call was at %s and Amazon allows one a minute: try again after %s", ErrRefused,
			stamp(st.LastCallAt), stamp(st.LastCallAt.Add(rotateInterval)))
	}
	return nil
}

// Request writes a rotation request for secretID, unless Check refuses it. It returns the
// snapshot it judged, whose CurrentVersionID Wait compares against.
func Request(ctx context.Context, sm SecretsManager, clk clock.Clock, secretID, by, reason string) (Snapshot, vault.RotationRequest, error) {
	s, err := describe(ctx, sm, secretID)
	if err != nil {
		return Snapshot{}, vault.RotationRequest{}, err
	}
	now := clk.Now()
	if err := Check(s, now); err != nil {
		return s, vault.RotationRequest{}, err
	}
	req := vault.RotationRequest{At: now.UTC(), By: by, Reason: reason}
	tags, err := vault.RequestTags(req)
	if err != nil {
		return s, vault.RotationRequest{}, err
	}
	if _, err := sm.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(secretID), Tags: tags}); err != nil {
		return s, vault.RotationRequest{}, fmt.Errorf("writing the rotation request on secret %s: %w", secretID, err)
	}
	return s, req, nil
}

// Phase is how far a requested rotation got, as Wait reports it.
type Phase string

const (
	PhaseRequested Phase = "requested" // the request waits for the daemon
	PhaseInFlight  Phase = "in-flight" // the daemon made the rotate call; the new secret is awaited
	PhaseStaged    Phase = "staged"    // the new secret is AWSPENDING, being verified
	PhaseRetrying  Phase = "retrying"  // an attempt failed; the daemon retries with backoff
	PhasePromoted  Phase = "promoted"  // AWSCURRENT moved to a new version
)

// Wait polls the secret every poll until AWSCURRENT leaves fromVersion, and returns the new
// version id. progress is told each phase change. It gives up when ctx ends.
func Wait(ctx context.Context, sm SecretsManager, clk clock.Clock, secretID, fromVersion string, poll time.Duration,
	progress func(Phase, Snapshot)) (string, error) {
	last := Phase("")
	for {
		s, err := describe(ctx, sm, secretID)
		ph := Phase("")
		switch {
		case err == nil:
			ph = phaseOf(s, fromVersion)
		case ctx.Err() == nil:
			ph = Phase("unreadable: " + err.Error())
		}
		if ph != "" && ph != last {
			last = ph
			progress(ph, s)
		}
		if ph == PhasePromoted {
			return s.CurrentVersionID, nil
		}
		if !clock.Sleep(ctx, clk, poll) {
			return "", fmt.Errorf("waiting for the rotation of secret %s (last seen: %s): %w", secretID, last, ctx.Err())
		}
	}
}

func phaseOf(s Snapshot, fromVersion string) Phase {
	switch st := s.State; {
	case s.CurrentVersionID != "" && s.CurrentVersionID != fromVersion:
		return PhasePromoted
	case s.PendingVersionID != "":
		return PhaseStaged
	case !st.RequestedAt.IsZero():
		return PhaseInFlight
	case st.RequestPending():
		return PhaseRequested
	case st.Attempts > 0:
		return PhaseRetrying
	}
	return PhaseRequested
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
