package simulation

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault"
)

// version is one Secrets Manager secret version: the bytes vault.Store would write and its labels.
type version struct {
	id     string
	rec    vault.Record
	enc    []byte
	stages []string
}

// secretState is one Secrets Manager secret: versions with staging labels and the tags that hold
// the rotation state. It lives outside every Rotator, so it survives restarts.
type secretState struct {
	versions map[string]*version
	order    []string
	state    vault.RotationState
}

func (s secretState) clone() secretState {
	c := secretState{versions: make(map[string]*version, len(s.versions)), order: slices.Clone(s.order), state: s.state}
	for id, v := range s.versions {
		cv := *v
		cv.stages = slices.Clone(v.stages)
		c.versions[id] = &cv
	}
	return c
}

// holder is the version carrying stage, or nil.
func (s *secretState) holder(stage string) *version {
	for _, id := range s.order {
		if v := s.versions[id]; slices.Contains(v.stages, stage) {
			return v
		}
	}
	return nil
}

func (v *version) drop(stage string) {
	v.stages = slices.DeleteFunc(v.stages, func(x string) bool { return x == stage })
}

// attach puts stage on v and takes it off whoever had it, as UpdateSecretVersionStage does;
// moving AWSCURRENT hands AWSPREVIOUS to the version that lost it, as the service does itself.
func (s *secretState) attach(stage string, v *version) {
	if old := s.holder(stage); old != nil && old != v {
		old.drop(stage)
		if stage == vault.StageCurrent {
			s.attach(vault.StagePrevious, old)
		}
	}
	if !slices.Contains(v.stages, stage) {
		v.stages = append(v.stages, stage)
	}
}

func (v *version) public() vault.Version {
	return vault.Version{ID: v.id, Record: v.rec, Stages: slices.Clone(v.stages)}
}

// fakeVault is rotator.Vault over the sides' secrets, with Secrets Manager's semantics: a reused
// ClientRequestToken with the same bytes is a no-op, with other bytes vault.ErrTokenConflict.
type fakeVault struct{ s *sim }

func (f fakeVault) side(secretID string) (*appSide, error) {
	side, ok := f.s.bySecret[secretID]
	if !ok {
		return nil, fmt.Errorf("secret %s: %w", secretID, vault.ErrNotFound)
	}
	return side, nil
}

func (f fakeVault) Current(_ context.Context, secretID string) (vault.Version, error) {
	side, err := f.side(secretID)
	if err != nil {
		return vault.Version{}, err
	}
	var out vault.Version
	err = f.s.call(side, svcVault, "GetSecretValue(AWSCURRENT)", func() error {
		v := side.vault.holder(vault.StageCurrent)
		if v == nil {
			return fmt.Errorf("reading AWSCURRENT of secret %s: %w", secretID, vault.ErrNoCurrent)
		}
		out = v.public()
		return nil
	}, nil)
	return out, err
}

func (f fakeVault) Pending(_ context.Context, secretID string) (vault.Version, bool, error) {
	side, err := f.side(secretID)
	if err != nil {
		return vault.Version{}, false, err
	}
	var out vault.Version
	var ok bool
	err = f.s.call(side, svcVault, "DescribeSecret(AWSPENDING)", func() error {
		v := side.vault.holder(vault.StagePending)
		if v != nil && !slices.Contains(v.stages, vault.StageCurrent) {
			out, ok = v.public(), true
		}
		return nil
	}, nil)
	return out, ok, err
}

func (f fakeVault) Stage(_ context.Context, secretID, token string, r vault.Record) error {
	side, err := f.side(secretID)
	if err != nil {
		return err
	}
	enc, err := vault.Encode(r, vault.FormatDefault)
	if err != nil {
		return fmt.Errorf("staging version %s of secret %s: %w", token, secretID, err)
	}
	return f.s.call(side, svcVault, "PutSecretValue(AWSPENDING)", func() error {
		sv := &side.vault
		v, exists := sv.versions[token]
		switch {
		case exists && !bytes.Equal(v.enc, enc):
			return fmt.Errorf("staging version %s of secret %s: %w", token, secretID, vault.ErrTokenConflict)
		case !exists:
			v = &version{id: token, rec: r, enc: enc}
			sv.versions[token] = v
			sv.order = append(sv.order, token)
		}
		sv.attach(vault.StagePending, v)
		return nil
	}, nil)
}

func (f fakeVault) Promote(_ context.Context, secretID, versionID, fromVersionID string) error {
	side, err := f.side(secretID)
	if err != nil {
		return err
	}
	return f.s.call(side, svcVault, "UpdateSecretVersionStage(AWSCURRENT)", func() error {
		sv := &side.vault
		v, ok := sv.versions[versionID]
		if !ok {
			return fmt.Errorf("promoting version %s of secret %s: %w", versionID, secretID, vault.ErrNotFound)
		}
		if old := sv.holder(vault.StageCurrent); old != v {
			if old == nil || old.id != fromVersionID {
				return fmt.Errorf("promoting version %s of secret %s: %w", versionID, secretID, vault.ErrCurrentMoved)
			}
			sv.attach(vault.StageCurrent, v)
			f.s.onPromote(side, old, v)
		}
		v.drop(vault.StagePending)
		return nil
	}, nil)
}

func (f fakeVault) ClearPending(_ context.Context, secretID, versionID string) error {
	side, err := f.side(secretID)
	if err != nil {
		return err
	}
	return f.s.call(side, svcVault, "UpdateSecretVersionStage(-AWSPENDING)", func() error {
		if v, ok := side.vault.versions[versionID]; ok {
			v.drop(vault.StagePending)
		}
		return nil
	}, nil)
}

func (f fakeVault) LoadState(_ context.Context, secretID string) (vault.RotationState, error) {
	side, err := f.side(secretID)
	if err != nil {
		return vault.RotationState{}, err
	}
	var st vault.RotationState
	err = f.s.call(side, svcVault, "DescribeSecret(tags)", func() error {
		st = side.vault.state
		return nil
	}, nil)
	return st, err
}

// SaveState is TagResource then UntagResource, as vault.Store does it: an ambiguous failure
// writes the non-zero fields and leaves the fields being cleared at their old values.
func (f fakeVault) SaveState(_ context.Context, secretID string, st vault.RotationState) error {
	side, err := f.side(secretID)
	if err != nil {
		return err
	}
	return f.s.call(side, svcVault, "TagResource", func() error {
		st.Request = side.vault.state.Request // SaveState never touches an operator's request
		side.vault.state = st
		return nil
	}, func() {
		old := &side.vault.state
		if !st.RequestedAt.IsZero() {
			old.RequestedAt = st.RequestedAt
		}
		if !st.NextAttemptAt.IsZero() {
			old.NextAttemptAt = st.NextAttemptAt
		}
		if !st.NoticedExpiry.IsZero() {
			old.NoticedExpiry = st.NoticedExpiry
		}
		if st.Attempts != 0 {
			old.Attempts = st.Attempts
		}
		if st.RotationID != "" {
			old.RotationID = st.RotationID
		}
		if !st.ServedRequest.IsZero() {
			old.ServedRequest = st.ServedRequest
		}
	})
}

// ClearRequest is one UntagResource; the simulation writes no requests, so it only counts.
func (f fakeVault) ClearRequest(_ context.Context, secretID string) error {
	side, err := f.side(secretID)
	if err != nil {
		return err
	}
	return f.s.call(side, svcVault, "UntagResource(request)", func() error {
		side.vault.state.Request, side.vault.state.ServedRequest = vault.RotationRequest{}, time.Time{}
		return nil
	}, nil)
}

// labelled reports whether some version carrying a staging label holds the secret value.
func (s *secretState) labelled(value string) bool {
	for _, id := range slices.Sorted(maps.Keys(s.versions)) {
		v := s.versions[id]
		if len(v.stages) > 0 && v.rec.ClientSecret.Reveal() == value {
			return true
		}
	}
	return false
}
