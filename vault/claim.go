package vault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"go.uber.org/zap"
)

// StageClaim is the staging label on the version that holds the claim on a secret's next rotate
// call. It is the daemon's own label: consumers read AWSCURRENT or AWSPREVIOUS and never see it,
// and Secrets Manager moves it like any label a put names.
const StageClaim = "LWA_ROTATOR_CLAIM"

// Claim is one replica's hold on one due rotation: only the holder makes the rotate call, and
// only before it lapses. It is a version of the secret of its own (labelled StageClaim), written
// with PutSecretValue under a ClientRequestToken every replica derives from the same snapshot:
// Secrets Manager refuses a second value under a token, so of the replicas that judged one
// snapshot due, exactly one writes the claim. The version holds no secret.
type Claim struct {
	// VersionID is the claim's version (its token); "" before it is written.
	VersionID string
	// Holder names the process: pod, task or host, and the process's own instance id.
	Holder     string
	RotationID string
	// ClaimedAt is when the holder wrote it, by the holder's clock; Until is when it lapses,
	// after which another replica may take the rotation over.
	ClaimedAt, Until time.Time
}

// claimShape is the stored value. It is the holder's attempt in full, so a retry by the same
// holder after a lost answer is told from another replica's claim by reading it back.
type claimShape struct {
	Claim struct {
		Holder     string `json:"holder"`
		RotationID string `json:"rotationId"`
		ClaimedAt  string `json:"claimedAt"`
		Until      string `json:"until"`
	} `json:"lwaRotatorClaim"`
}

const claimDomain = "lwa-rotator/vault/claim/v1:"

// claimBasis names the rotation a snapshot shows due: the current version, the latest rotate
// call's time and the attempts counted since. Each rotate call changes it (the intent records
// the call's time, a failure or the watchdog counts an attempt, a promotion moves AWSCURRENT), so
// a claim answers for one call; the tags a call does not write (a notice, a request) are left
// out, so that replicas that read the secret either side of such a write still agree.
func claimBasis(snap Snapshot) string {
	st := snap.State
	sum := sha256.Sum256([]byte(claimDomain + snap.Current.ID + "|" + tagTime(st.LastCallAt) + "|" + strconv.Itoa(st.Attempts)))
	return hex.EncodeToString(sum[:])[:30]
}

// ClaimToken is the ClientRequestToken, and so the version id, of the claim on the rotation snap
// shows due: "c-", the basis, "-", and a link to the version holding StageClaim in snap, so that
// a lapsed claim is taken over under a token of its own, which again only one replica wins.
// Its hyphens keep it apart from the versions the daemon stages (StagedByDaemon).
func ClaimToken(snap Snapshot) string {
	basis := claimBasis(snap)
	link := sha256.Sum256([]byte(claimDomain + basis + "|" + snap.Holder(StageClaim)))
	return "c-" + basis + "-" + hex.EncodeToString(link[:])[:31]
}

// claimFor reports whether versionID is a claim on the rotation snap shows due.
func claimFor(versionID string, snap Snapshot) bool {
	return strings.HasPrefix(versionID, "c-"+claimBasis(snap)+"-")
}

// ClaimOn writes c as the claim on the rotation snap shows due, and returns the claim that holds
// it: c itself (with its VersionID), or, when a claim was written under the same token first,
// that one. The caller compares Holder to know whether it won: a claim of its own written by an
// earlier try (its answer lost) comes back with that try's times.
func (s *Store) ClaimOn(ctx context.Context, snap Snapshot, c Claim) (Claim, error) {
	token := ClaimToken(snap)
	body, err := encodeClaim(c)
	if err != nil {
		return Claim{}, fmt.Errorf("claiming the rotation of secret %s: %w", snap.SecretID, err)
	}
	s.noteWrite(snap.SecretID)
	_, err = s.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(snap.SecretID),
		ClientRequestToken: aws.String(token),
		SecretString:       aws.String(string(body)),
		VersionStages:      []string{StageClaim},
	})
	var exists *types.ResourceExistsException
	switch {
	case errors.As(err, &exists):
		held, rerr := s.claim(ctx, snap.SecretID, token)
		if rerr != nil {
			return Claim{}, fmt.Errorf("claiming the rotation of secret %s: the claim %s exists: %w", snap.SecretID, token, rerr)
		}
		return held, nil
	case err != nil:
		return Claim{}, fmt.Errorf("claiming the rotation of secret %s under %s: %w", snap.SecretID, token, mapErr(err))
	}
	c.VersionID = token
	s.claims.put(snap.SecretID, c.VersionID, c)
	s.log().Debug("claimed rotation", zap.String("secret", snap.SecretID), zap.String("version", token),
		zap.String("holder", c.Holder), zap.String("rotation", c.RotationID))
	return c, nil
}

// claim reads the claim version id: once per process, since a version's value never changes.
func (s *Store) claim(ctx context.Context, secretID, versionID string) (Claim, error) {
	if c, ok := s.claims.get(secretID, versionID); ok {
		return c, nil
	}
	out, err := s.getByID(ctx, secretID, versionID)
	if err != nil {
		return Claim{}, err
	}
	c, err := decodeClaim(aws.ToString(out.SecretString))
	if err != nil {
		return Claim{}, fmt.Errorf("reading claim %s of secret %s: %w", versionID, secretID, err)
	}
	c.VersionID = versionID
	s.claims.put(secretID, versionID, c)
	return c, nil
}

func encodeClaim(c Claim) ([]byte, error) {
	if c.Holder == "" || c.ClaimedAt.IsZero() || !c.Until.After(c.ClaimedAt) {
		return nil, errors.New("a claim needs a holder and a lifetime")
	}
	var v claimShape
	v.Claim.Holder, v.Claim.RotationID = c.Holder, c.RotationID
	v.Claim.ClaimedAt, v.Claim.Until = tagTime(c.ClaimedAt), tagTime(c.Until)
	return json.Marshal(v)
}

func decodeClaim(s string) (Claim, error) {
	var v claimShape
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return Claim{}, fmt.Errorf("%w: %s", ErrMalformed, describeJSONError(err))
	}
	c := Claim{Holder: v.Claim.Holder, RotationID: v.Claim.RotationID}
	var err1, err2 error
	c.ClaimedAt, err1 = time.Parse(time.RFC3339Nano, v.Claim.ClaimedAt)
	c.Until, err2 = time.Parse(time.RFC3339Nano, v.Claim.Until)
	if c.Holder == "" || err1 != nil || err2 != nil {
		return Claim{}, fmt.Errorf("%w: not a claim (holder, claimedAt and until are required)", ErrMalformed)
	}
	c.ClaimedAt, c.Until = c.ClaimedAt.UTC(), c.Until.UTC()
	return c, nil
}
