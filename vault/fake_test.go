package vault_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// fakeSM is an in-memory Secrets Manager that follows real AWS where moto is lax: a reused
// ClientRequestToken with different bytes fails, RemoveFromVersionId must name the label's
// holder, and unlabelled versions are hidden from DescribeSecret. It records every put.
type fakeSM struct {
	mu      sync.Mutex
	secrets map[string]*fakeSecret
	puts    []put
	calls   map[string]int
	// existsOnSame makes a reused token with the same bytes fail with ResourceExistsException,
	// the other answer real AWS gives in some cases.
	existsOnSame bool
	// beforePut and beforeMove run (unlocked) just before the call mutates state, to stage races.
	beforePut, beforeMove func()
}

type fakeSecret struct {
	arn, kmsKeyID string
	order         []string // version ids, oldest first
	versions      map[string]*fakeVersion
	tags          map[string]string
}

type fakeVersion struct {
	value  string
	stages []string
}

type put struct{ token, value string }

func newFakeSM() *fakeSM {
	return &fakeSM{secrets: map[string]*fakeSecret{}, calls: map[string]int{}}
}

func notFound(what string) error {
	return &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find " + what)}
}

func invalidParam(msg string) error {
	return &types.InvalidParameterException{Message: aws.String(msg)}
}

func (f *fakeSM) secret(id *string) (*fakeSecret, error) {
	s, ok := f.secrets[aws.ToString(id)]
	if !ok {
		return nil, notFound("the specified secret")
	}
	return s, nil
}

func (f *fakeSM) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeSM) recordedPuts() []put {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.puts)
}

// stages returns a copy of the labels on every version, unlabelled ones included.
func (f *fakeSM) stages(name string) map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]string{}
	for id, v := range f.secrets[name].versions {
		out[id] = slices.Clone(v.stages)
	}
	return out
}

func (f *fakeSM) value(name, versionID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.secrets[name].versions[versionID]; ok {
		return v.value
	}
	return ""
}

// attach puts stage on id, taking it off any other version; moving AWSCURRENT hands
// AWSPREVIOUS to the version that lost it, as the service does.
func (s *fakeSecret) attach(stage, id string) {
	for vid, v := range s.versions {
		if vid != id && slices.Contains(v.stages, stage) {
			v.stages = slices.DeleteFunc(v.stages, func(x string) bool { return x == stage })
			if stage == "AWSCURRENT" {
				s.attach("AWSPREVIOUS", vid)
			}
		}
	}
	if v := s.versions[id]; !slices.Contains(v.stages, stage) {
		v.stages = append(v.stages, stage)
	}
}

func (s *fakeSecret) addVersion(id, value string, stages []string) {
	s.versions[id] = &fakeVersion{value: value}
	s.order = append(s.order, id)
	for _, st := range stages {
		s.attach(st, id)
	}
}

func (f *fakeSM) CreateSecret(_ context.Context, in *sm.CreateSecretInput, _ ...func(*sm.Options)) (*sm.CreateSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["CreateSecret"]++
	name := aws.ToString(in.Name)
	if _, ok := f.secrets[name]; ok {
		return nil, &types.ResourceExistsException{Message: aws.String("secret exists")}
	}
	s := &fakeSecret{arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + name + "-AbCdEf",
		kmsKeyID: aws.ToString(in.KmsKeyId), versions: map[string]*fakeVersion{}, tags: map[string]string{}}
	f.secrets[name] = s
	out := &sm.CreateSecretOutput{ARN: aws.String(s.arn), Name: in.Name}
	if in.SecretString != nil {
		id := fmt.Sprintf("initial-version-%032d", len(f.secrets))
		s.addVersion(id, *in.SecretString, []string{"AWSCURRENT"})
		out.VersionId = aws.String(id)
	}
	return out, nil
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *sm.GetSecretValueInput, _ ...func(*sm.Options)) (*sm.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["GetSecretValue"]++
	s, err := f.secret(in.SecretId)
	if err != nil {
		return nil, err
	}
	stage := aws.ToString(in.VersionStage)
	if in.VersionId == nil && stage == "" {
		stage = "AWSCURRENT"
	}
	for _, id := range s.order {
		v := s.versions[id]
		if (in.VersionId == nil || *in.VersionId == id) && (stage == "" || slices.Contains(v.stages, stage)) {
			return &sm.GetSecretValueOutput{ARN: aws.String(s.arn), VersionId: aws.String(id),
				SecretString: aws.String(v.value), VersionStages: slices.Clone(v.stages)}, nil
		}
	}
	return nil, notFound("the specified secret value")
}

func (f *fakeSM) PutSecretValue(_ context.Context, in *sm.PutSecretValueInput, _ ...func(*sm.Options)) (*sm.PutSecretValueOutput, error) {
	if f.beforePut != nil {
		f.beforePut()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["PutSecretValue"]++
	token, value := aws.ToString(in.ClientRequestToken), aws.ToString(in.SecretString)
	f.puts = append(f.puts, put{token, value})
	s, err := f.secret(in.SecretId)
	if err != nil {
		return nil, err
	}
	out := &sm.PutSecretValueOutput{ARN: aws.String(s.arn), VersionId: aws.String(token)}
	if v, ok := s.versions[token]; ok {
		if v.value != value || f.existsOnSame {
			return nil, &types.ResourceExistsException{Message: aws.String("You can't modify an existing version")}
		}
		out.VersionStages = slices.Clone(v.stages)
		return out, nil
	}
	stages := in.VersionStages
	if len(stages) == 0 {
		stages = []string{"AWSCURRENT"}
	}
	s.addVersion(token, value, stages)
	out.VersionStages = slices.Clone(s.versions[token].stages)
	return out, nil
}

func (f *fakeSM) UpdateSecretVersionStage(_ context.Context, in *sm.UpdateSecretVersionStageInput, _ ...func(*sm.Options)) (*sm.UpdateSecretVersionStageOutput, error) {
	if f.beforeMove != nil {
		f.beforeMove()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["UpdateSecretVersionStage"]++
	s, err := f.secret(in.SecretId)
	if err != nil {
		return nil, err
	}
	stage, to, from := aws.ToString(in.VersionStage), aws.ToString(in.MoveToVersionId), aws.ToString(in.RemoveFromVersionId)
	holder := ""
	for id, v := range s.versions {
		if slices.Contains(v.stages, stage) {
			holder = id
		}
	}
	if holder != "" && holder != to && holder != from {
		return nil, invalidParam("the label is attached to a version other than RemoveFromVersionId")
	}
	if from != "" && from != holder {
		return nil, invalidParam("RemoveFromVersionId does not hold the label")
	}
	out := &sm.UpdateSecretVersionStageOutput{ARN: aws.String(s.arn), Name: in.SecretId}
	if to == "" {
		if stage == "AWSCURRENT" {
			return nil, invalidParam("AWSCURRENT can only be moved, not removed")
		}
		v := s.versions[from]
		v.stages = slices.DeleteFunc(v.stages, func(x string) bool { return x == stage })
		return out, nil
	}
	if _, ok := s.versions[to]; !ok {
		return nil, notFound("the version to move to")
	}
	s.attach(stage, to)
	return out, nil
}

func (f *fakeSM) DescribeSecret(_ context.Context, in *sm.DescribeSecretInput, _ ...func(*sm.Options)) (*sm.DescribeSecretOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["DescribeSecret"]++
	s, err := f.secret(in.SecretId)
	if err != nil {
		return nil, err
	}
	out := &sm.DescribeSecretOutput{ARN: aws.String(s.arn), Name: in.SecretId, VersionIdsToStages: map[string][]string{}}
	if s.kmsKeyID != "" {
		out.KmsKeyId = aws.String(s.kmsKeyID)
	}
	for id, v := range s.versions {
		if len(v.stages) > 0 {
			out.VersionIdsToStages[id] = slices.Clone(v.stages)
		}
	}
	for k, v := range s.tags {
		out.Tags = append(out.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out, nil
}

func (f *fakeSM) TagResource(_ context.Context, in *sm.TagResourceInput, _ ...func(*sm.Options)) (*sm.TagResourceOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["TagResource"]++
	s, err := f.secret(in.SecretId)
	if err != nil {
		return nil, err
	}
	// AWS's rule (moto ignores it): at most 50 tags, counting those already there; a request
	// that would pass it changes nothing.
	after := map[string]bool{}
	for k := range s.tags {
		after[k] = true
	}
	for _, t := range in.Tags {
		after[aws.ToString(t.Key)] = true
	}
	if len(after) > 50 {
		return nil, &types.InvalidParameterException{Message: aws.String("too many tags")}
	}
	for _, t := range in.Tags {
		s.tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return &sm.TagResourceOutput{}, nil
}

func (f *fakeSM) UntagResource(_ context.Context, in *sm.UntagResourceInput, _ ...func(*sm.Options)) (*sm.UntagResourceOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls["UntagResource"]++
	s, err := f.secret(in.SecretId)
	if err != nil {
		return nil, err
	}
	for _, k := range in.TagKeys {
		delete(s.tags, k)
	}
	return &sm.UntagResourceOutput{}, nil
}
