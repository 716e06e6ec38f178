package simulation

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// smFault is fakesm's fault hook: every Secrets Manager call about an application's secret is
// one vault call of its fault schedule and crash point. An ambiguous failure is fakesm's Applied
// fault: the call takes effect and reports failure, like a timeout after the service acted.
func (s *sim) smFault(op, secretID string) fakesm.Fault {
	side, ok := s.bySecret[secretID]
	if s.seeding || !ok {
		return fakesm.Fault{}
	}
	b, crashAfter := s.enter(side, svcVault, op)
	if crashAfter {
		s.cur().dieAfter = side
	}
	if b == nil {
		return fakesm.Fault{}
	}
	return fakesm.Fault{Err: s.faultErr(side, svcVault, op, 0), Applied: b.ambiguous}
}

// smAPI is vault.Store's Secrets Manager: the world's, with the process dying right after a call
// when its crash point says so, and every move of AWSCURRENT checked as it happens.
type smAPI struct{ s *sim }

// returned ends a call: a crash armed for after it happens now, whatever the call returned.
func (a smAPI) returned(op string) {
	if p := a.s.cur(); p.dieAfter != nil {
		side := p.dieAfter
		p.dieAfter = nil
		a.s.crash(p, side, op, "after")
	}
}

// write runs a call that can move labels, and checks a move of AWSCURRENT before a crash after
// the call can hide it.
func (a smAPI) write(secretID, op string, call func()) {
	call()
	if side := a.s.bySecret[secretID]; side != nil {
		before := side.currentID
		side.currentID, _, _ = a.s.holder(side, vault.StageCurrent)
		if side.currentID != before {
			a.s.onPromote(side, before, side.currentID)
		}
	}
	a.returned(op)
}

func (a smAPI) GetSecretValue(ctx context.Context, in *sm.GetSecretValueInput, opts ...func(*sm.Options)) (*sm.GetSecretValueOutput, error) {
	out, err := a.s.sm.GetSecretValue(ctx, in, opts...)
	a.returned(fakesm.OpGetSecretValue)
	a.s.slowAnswer(aws.ToString(in.SecretId), fakesm.OpGetSecretValue)
	return out, err
}

func (a smAPI) DescribeSecret(ctx context.Context, in *sm.DescribeSecretInput, opts ...func(*sm.Options)) (*sm.DescribeSecretOutput, error) {
	out, err := a.s.sm.DescribeSecret(ctx, in, opts...)
	a.returned(fakesm.OpDescribeSecret)
	a.s.slowAnswer(aws.ToString(in.SecretId), fakesm.OpDescribeSecret)
	return out, err
}

func (a smAPI) PutSecretValue(ctx context.Context, in *sm.PutSecretValueInput, opts ...func(*sm.Options)) (out *sm.PutSecretValueOutput, err error) {
	a.write(aws.ToString(in.SecretId), fakesm.OpPutSecretValue, func() {
		out, err = a.s.sm.PutSecretValue(ctx, in, opts...)
		if slices.Contains(in.VersionStages, vault.StageClaim) {
			var exists *smtypes.ResourceExistsException
			switch {
			case err == nil:
				a.s.fig.claims++
			case errors.As(err, &exists):
				a.s.fig.claimsRefused++
			}
		}
	})
	return out, err
}

func (a smAPI) UpdateSecretVersionStage(ctx context.Context, in *sm.UpdateSecretVersionStageInput, opts ...func(*sm.Options)) (out *sm.UpdateSecretVersionStageOutput, err error) {
	a.write(aws.ToString(in.SecretId), fakesm.OpUpdateSecretVersionStage, func() { out, err = a.s.sm.UpdateSecretVersionStage(ctx, in, opts...) })
	return out, err
}

func (a smAPI) TagResource(ctx context.Context, in *sm.TagResourceInput, opts ...func(*sm.Options)) (*sm.TagResourceOutput, error) {
	out, err := a.s.sm.TagResource(ctx, in, opts...)
	a.returned(fakesm.OpTagResource)
	return out, err
}

func (a smAPI) UntagResource(ctx context.Context, in *sm.UntagResourceInput, opts ...func(*sm.Options)) (*sm.UntagResourceOutput, error) {
	out, err := a.s.sm.UntagResource(ctx, in, opts...)
	a.returned(fakesm.OpUntagResource)
	return out, err
}

func (a smAPI) CreateSecret(ctx context.Context, in *sm.CreateSecretInput, opts ...func(*sm.Options)) (out *sm.CreateSecretOutput, err error) {
	a.write(aws.ToString(in.Name), fakesm.OpCreateSecret, func() { out, err = a.s.sm.CreateSecret(ctx, in, opts...) })
	return out, err
}

// record is what version id of side's secret holds, decoded once: versions never change.
func (s *sim) record(side *appSide, id string) (vault.Record, bool) {
	if r, ok := side.records[id]; ok {
		return r, true
	}
	v, ok := s.sm.Value(side.app.SecretID, id)
	if !ok {
		return vault.Record{}, false
	}
	r, err := vault.Decode([]byte(v), vault.FormatDefault)
	if err != nil {
		s.violate(side, "harness", "version "+id+" does not decode: "+err.Error())
		return vault.Record{}, false
	}
	side.records[id] = r
	return r, true
}

// holder is the version of side's secret carrying stage, and its record.
func (s *sim) holder(side *appSide, stage string) (string, vault.Record, bool) {
	for id, stages := range s.sm.Versions(side.app.SecretID) {
		if slices.Contains(stages, stage) {
			r, ok := s.record(side, id)
			return id, r, ok
		}
	}
	return "", vault.Record{}, false
}

// current is the version of side's secret holding AWSCURRENT, and its record.
func (s *sim) current(side *appSide) (string, vault.Record, bool) {
	r, ok := s.record(side, side.currentID)
	return side.currentID, r, ok
}

// labelled reports whether some version of side's secret carrying a staging label holds value.
func (s *sim) labelled(side *appSide, value string) bool {
	versions := s.sm.Versions(side.app.SecretID)
	for _, id := range slices.Sorted(maps.Keys(versions)) {
		// A claim's version (vault.StageClaim) holds no secret: it is no record.
		if len(versions[id]) == 0 || slices.Contains(versions[id], vault.StageClaim) {
			continue
		}
		if r, ok := s.record(side, id); ok && r.ClientSecret.Reveal() == value {
			return true
		}
	}
	return false
}
