// Package fakesm is the project's only in-memory AWS Secrets Manager. It follows the service's
// documented rules where moto is lax (a reused ClientRequestToken never overwrites, every label
// move names the label's holder, versions without a label are hidden, tags have limits), so a
// test that passes against it makes the same calls that pass against AWS. Every error is the
// SDK's typed exception or a smithy.APIError carrying AWS's error code, so errors.As in callers
// works as it does against the service.
package fakesm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// The labels the service itself moves.
const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
)

// Operation names, as Calls counts them and Fault receives them.
const (
	OpCreateSecret             = "CreateSecret"
	OpGetSecretValue           = "GetSecretValue"
	OpPutSecretValue           = "PutSecretValue"
	OpUpdateSecretVersionStage = "UpdateSecretVersionStage"
	OpDescribeSecret           = "DescribeSecret"
	OpTagResource              = "TagResource"
	OpUntagResource            = "UntagResource"
	OpListSecrets              = "ListSecrets"
	OpBatchGetSecretValue      = "BatchGetSecretValue"
)

// Options configure an SM; the zero value is usable.
type Options struct {
	// Clock stamps CreatedDate and LastChangedDate; nil leaves them unset, so nothing reads the
	// wall clock.
	Clock clock.Clock
	// Fault is asked before every call (without the SM's lock held, so it may call the SM
	// itself, for example to stage a racing writer) and decides whether the call fails.
	// secretID is the call's SecretId ("" for ListSecrets and BatchGetSecretValue).
	Fault func(op, secretID string) Fault
	// Region and Account go into ARNs; defaults us-east-1 and 123456789012.
	Region, Account string
}

// Fault is how one call fails. The zero Fault lets the call through.
type Fault struct {
	// Err is returned to the caller; use an SDK exception or a smithy.APIError so callers see
	// what the service would send.
	Err error
	// Applied makes the call take effect before Err is returned: the write happened but the
	// caller cannot know (a lost response, a timeout after the service acted).
	Applied bool
}

// SM is an in-memory Secrets Manager, safe for concurrent use.
type SM struct {
	opts Options

	mu      sync.Mutex
	secrets map[string]*secret // by name
	order   []string           // names, in creation order: ListSecrets' order
	calls   map[string]int
	seq     int // version ids for writes without a ClientRequestToken
}

type secret struct {
	name, arn, kmsKeyID, description string
	versions                         map[string]*version
	versionOrder                     []string // oldest first
	tags                             map[string]string
	tagOrder                         []string // keys in the order first set, as DescribeSecret lists them
	created, changed                 time.Time
}

type version struct {
	str     *string
	bin     []byte
	stages  []string
	created time.Time
}

// New returns an empty Secrets Manager.
func New(o Options) *SM {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Account == "" {
		o.Account = "123456789012"
	}
	return &SM{opts: o, secrets: map[string]*secret{}, calls: map[string]int{}}
}

// begin counts the call and asks the fault hook, without holding the lock while it runs.
func (f *SM) begin(op, secretID string) Fault {
	f.mu.Lock()
	f.calls[op]++
	f.mu.Unlock()
	if f.opts.Fault == nil {
		return Fault{}
	}
	return f.opts.Fault(op, secretID)
}

// finish applies a fault to a call's outcome: a fault before the effect never runs it.
func finish[T any](flt Fault, run func() (T, error)) (T, error) {
	var zero T
	if flt.Err != nil && !flt.Applied {
		return zero, flt.Err
	}
	out, err := run()
	if flt.Err != nil {
		return zero, flt.Err
	}
	return out, err
}

func (f *SM) now() time.Time {
	if f.opts.Clock == nil {
		return time.Time{}
	}
	return f.opts.Clock.Now()
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return aws.Time(t)
}

// lookup finds a secret by name or ARN; the caller holds f.mu.
func (f *SM) lookup(id *string) (*secret, error) {
	key := aws.ToString(id)
	if key == "" {
		return nil, invalidParam("SecretId is required")
	}
	if s, ok := f.secrets[key]; ok {
		return s, nil
	}
	for _, s := range f.secrets {
		if s.arn == key {
			return s, nil
		}
	}
	// A partial ARN (without the six random characters) names the secret too, as the service
	// documents for every SecretId; a full ARN wins over it (the full ARN of "a" is the partial
	// ARN of a secret named "a-XXXXXX").
	for _, s := range f.secrets {
		if strings.HasPrefix(key, "arn:") && s.arn[:len(s.arn)-7] == key {
			return s, nil
		}
	}
	return nil, notFound("Secrets Manager can't find the specified secret.")
}

// arn builds a deterministic ARN: the service appends six random characters, we derive them
// from the name so runs repeat.
func (f *SM) arn(name string) string {
	sum := sha256.Sum256([]byte(name))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	suffix := make([]byte, 6)
	for i := range suffix {
		suffix[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", f.opts.Region, f.opts.Account, name, suffix)
}

// nextVersionID stands in for the UUID the SDK generates when a caller gives no token.
func (f *SM) nextVersionID() string {
	f.seq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", f.seq)
}

// holder returns the version carrying stage, or "".
func (s *secret) holder(stage string) string {
	for _, id := range s.versionOrder {
		if slices.Contains(s.versions[id].stages, stage) {
			return id
		}
	}
	return ""
}

func (s *secret) detach(stage, id string) {
	v := s.versions[id]
	v.stages = slices.DeleteFunc(v.stages, func(x string) bool { return x == stage })
}

// attach puts stage on id, taking it from its holder: moving AWSCURRENT hands AWSPREVIOUS to
// the version it left, as the service does.
func (s *secret) attach(stage, id string) {
	from := s.holder(stage)
	if from == id {
		return
	}
	if from != "" {
		s.detach(stage, from)
	}
	s.versions[id].stages = append(s.versions[id].stages, stage)
	if stage == stageCurrent && from != "" {
		s.attach(stagePrevious, from)
	}
}

// labelled returns the versions that carry a label: the others are deprecated and the service
// no longer lists them.
func (s *secret) labelled() map[string][]string {
	out := map[string][]string{}
	for id, v := range s.versions {
		if len(v.stages) > 0 {
			out[id] = slices.Clone(v.stages)
		}
	}
	return out
}

func (s *secret) tagList() []types.Tag {
	var out []types.Tag
	for _, k := range s.tagOrder {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(s.tags[k])})
	}
	return out
}

func (s *secret) setTag(k, v string) {
	if _, ok := s.tags[k]; !ok {
		s.tagOrder = append(s.tagOrder, k)
	}
	s.tags[k] = v
}

func (s *secret) deleteTag(k string) {
	if _, ok := s.tags[k]; ok {
		delete(s.tags, k)
		s.tagOrder = slices.DeleteFunc(s.tagOrder, func(x string) bool { return x == k })
	}
}

// secretValue reads the one of SecretString and SecretBinary a write carries.
func secretValue(str *string, bin []byte) (*string, []byte, error) {
	switch {
	case str != nil && bin != nil:
		return nil, nil, invalidParam("You can't specify both SecretString and SecretBinary.")
	case str == nil && bin == nil:
		return nil, nil, invalidParam("You must provide either SecretString or SecretBinary.")
	case str != nil:
		s := *str
		return &s, nil, nil
	default:
		return nil, bytes.Clone(bin), nil
	}
}

func (v *version) same(str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) {
		return false
	}
	if v.str != nil {
		return *v.str == *str
	}
	return bytes.Equal(v.bin, bin)
}

func validToken(tok string) error {
	if n := len(tok); n < 32 || n > 64 {
		return validation(fmt.Sprintf("ClientRequestToken must be 32 to 64 characters long, got %d", n))
	}
	return nil
}

func (f *SM) CreateSecret(_ context.Context, in *sm.CreateSecretInput, _ ...func(*sm.Options)) (*sm.CreateSecretOutput, error) {
	flt := f.begin(OpCreateSecret, aws.ToString(in.Name))
	return finish(flt, func() (*sm.CreateSecretOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		name := aws.ToString(in.Name)
		if name == "" {
			return nil, invalidParam("Name is required")
		}
		if _, ok := f.secrets[name]; ok {
			return nil, &types.ResourceExistsException{Message: aws.String("The operation failed because the secret " + name + " already exists.")}
		}
		if err := checkTags(nil, in.Tags); err != nil {
			return nil, err
		}
		var str *string
		var bin []byte
		hasValue := in.SecretString != nil || in.SecretBinary != nil
		if hasValue {
			var err error
			if str, bin, err = secretValue(in.SecretString, in.SecretBinary); err != nil {
				return nil, err
			}
		}
		id := aws.ToString(in.ClientRequestToken)
		if hasValue {
			if id == "" {
				id = f.nextVersionID()
			} else if err := validToken(id); err != nil {
				return nil, err
			}
		}
		now := f.now()
		s := &secret{name: name, arn: f.arn(name), kmsKeyID: aws.ToString(in.KmsKeyId), description: aws.ToString(in.Description),
			versions: map[string]*version{}, tags: map[string]string{}, created: now, changed: now}
		for _, t := range in.Tags {
			s.setTag(aws.ToString(t.Key), aws.ToString(t.Value))
		}
		out := &sm.CreateSecretOutput{ARN: aws.String(s.arn), Name: aws.String(name)}
		if hasValue {
			s.versions[id] = &version{str: str, bin: bin, stages: []string{stageCurrent}, created: now}
			s.versionOrder = append(s.versionOrder, id)
			out.VersionId = aws.String(id)
		}
		f.secrets[name] = s
		f.order = append(f.order, name)
		return out, nil
	})
}

func (f *SM) GetSecretValue(_ context.Context, in *sm.GetSecretValueInput, _ ...func(*sm.Options)) (*sm.GetSecretValueOutput, error) {
	flt := f.begin(OpGetSecretValue, aws.ToString(in.SecretId))
	return finish(flt, func() (*sm.GetSecretValueOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		s, err := f.lookup(in.SecretId)
		if err != nil {
			return nil, err
		}
		id, err := s.find(aws.ToString(in.VersionId), aws.ToString(in.VersionStage))
		if err != nil {
			return nil, err
		}
		v := s.versions[id]
		return &sm.GetSecretValueOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), VersionId: aws.String(id),
			SecretString: cloneStr(v.str), SecretBinary: bytes.Clone(v.bin), VersionStages: slices.Clone(v.stages),
			CreatedDate: timePtr(v.created)}, nil
	})
}

// find picks the version a read names: by id, by label, or both (they must agree); neither
// means AWSCURRENT. A version without labels is still readable by its id.
func (s *secret) find(id, stage string) (string, error) {
	if id == "" && stage == "" {
		stage = stageCurrent
	}
	if id != "" {
		v, ok := s.versions[id]
		if !ok || (stage != "" && !slices.Contains(v.stages, stage)) {
			return "", notFound("Secrets Manager can't find the specified secret value for VersionId: " + id)
		}
		return id, nil
	}
	if h := s.holder(stage); h != "" {
		return h, nil
	}
	return "", notFound("Secrets Manager can't find the specified secret value for staging label: " + stage)
}

func cloneStr(p *string) *string {
	if p == nil {
		return nil
	}
	s := *p
	return &s
}

func (f *SM) PutSecretValue(_ context.Context, in *sm.PutSecretValueInput, _ ...func(*sm.Options)) (*sm.PutSecretValueOutput, error) {
	flt := f.begin(OpPutSecretValue, aws.ToString(in.SecretId))
	return finish(flt, func() (*sm.PutSecretValueOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		s, err := f.lookup(in.SecretId)
		if err != nil {
			return nil, err
		}
		str, bin, err := secretValue(in.SecretString, in.SecretBinary)
		if err != nil {
			return nil, err
		}
		id := aws.ToString(in.ClientRequestToken)
		if id == "" {
			id = f.nextVersionID()
		} else if err := validToken(id); err != nil {
			return nil, err
		}
		out := &sm.PutSecretValueOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), VersionId: aws.String(id)}
		if v, ok := s.versions[id]; ok {
			// The token is the version's identity: a retry with the same value is ignored (its
			// labels stay where they are), another value can never replace a version.
			if !v.same(str, bin) {
				return nil, &types.ResourceExistsException{Message: aws.String("You can't modify an existing version, you can only create a new version.")}
			}
			out.VersionStages = slices.Clone(v.stages)
			return out, nil
		}
		stages := slices.Clone(in.VersionStages)
		if len(stages) == 0 || (len(s.versions) == 0 && !slices.Contains(stages, stageCurrent)) {
			// Without labels the new version becomes current; the first version always does.
			stages = append(stages, stageCurrent)
		}
		now := f.now()
		s.versions[id] = &version{str: str, bin: bin, created: now}
		s.versionOrder = append(s.versionOrder, id)
		for _, st := range stages {
			s.attach(st, id)
		}
		s.changed = now
		out.VersionStages = slices.Clone(s.versions[id].stages)
		return out, nil
	})
}

func (f *SM) UpdateSecretVersionStage(_ context.Context, in *sm.UpdateSecretVersionStageInput, _ ...func(*sm.Options)) (*sm.UpdateSecretVersionStageOutput, error) {
	flt := f.begin(OpUpdateSecretVersionStage, aws.ToString(in.SecretId))
	return finish(flt, func() (*sm.UpdateSecretVersionStageOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		s, err := f.lookup(in.SecretId)
		if err != nil {
			return nil, err
		}
		stage, to, from := aws.ToString(in.VersionStage), aws.ToString(in.MoveToVersionId), aws.ToString(in.RemoveFromVersionId)
		if stage == "" {
			return nil, invalidParam("VersionStage is required")
		}
		if to == "" && from == "" {
			return nil, invalidParam("You must specify MoveToVersionId, RemoveFromVersionId, or both.")
		}
		if to != "" {
			if _, ok := s.versions[to]; !ok {
				return nil, notFound("Secrets Manager can't find the specified secret version: " + to)
			}
		}
		holder := s.holder(stage)
		// Every change names the label's holder: moving a label another version carries needs
		// RemoveFromVersionId naming exactly that version, and a RemoveFromVersionId that does not
		// hold the label is refused, which makes each move a compare-and-set.
		if holder != "" && holder != to && from != holder {
			return nil, invalidParam(fmt.Sprintf("The staging label %s is currently attached to version %s, but RemoveFromVersionId names %q.", stage, holder, from))
		}
		if from != "" && from != holder {
			return nil, invalidParam(fmt.Sprintf("The staging label %s is not attached to version %s.", stage, from))
		}
		out := &sm.UpdateSecretVersionStageOutput{ARN: aws.String(s.arn), Name: aws.String(s.name)}
		if to == "" {
			if stage == stageCurrent {
				return nil, invalidParam("You can't remove AWSCURRENT from a version; move it to another version instead.")
			}
			s.detach(stage, from)
		} else {
			s.attach(stage, to)
		}
		s.changed = f.now()
		return out, nil
	})
}

func (f *SM) DescribeSecret(_ context.Context, in *sm.DescribeSecretInput, _ ...func(*sm.Options)) (*sm.DescribeSecretOutput, error) {
	flt := f.begin(OpDescribeSecret, aws.ToString(in.SecretId))
	return finish(flt, func() (*sm.DescribeSecretOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		s, err := f.lookup(in.SecretId)
		if err != nil {
			return nil, err
		}
		return &sm.DescribeSecretOutput{ARN: aws.String(s.arn), Name: aws.String(s.name), KmsKeyId: optional(s.kmsKeyID),
			Description: optional(s.description), VersionIdsToStages: s.labelled(), Tags: s.tagList(),
			CreatedDate: timePtr(s.created), LastChangedDate: timePtr(s.changed)}, nil
	})
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func (f *SM) TagResource(_ context.Context, in *sm.TagResourceInput, _ ...func(*sm.Options)) (*sm.TagResourceOutput, error) {
	flt := f.begin(OpTagResource, aws.ToString(in.SecretId))
	return finish(flt, func() (*sm.TagResourceOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		s, err := f.lookup(in.SecretId)
		if err != nil {
			return nil, err
		}
		if len(in.Tags) == 0 {
			return nil, invalidParam("Tags is required")
		}
		// The whole request is checked before any tag is set: a refused request changes nothing.
		if err := checkTags(s.tags, in.Tags); err != nil {
			return nil, err
		}
		for _, t := range in.Tags {
			s.setTag(aws.ToString(t.Key), aws.ToString(t.Value))
		}
		s.changed = f.now()
		return &sm.TagResourceOutput{}, nil
	})
}

func (f *SM) UntagResource(_ context.Context, in *sm.UntagResourceInput, _ ...func(*sm.Options)) (*sm.UntagResourceOutput, error) {
	flt := f.begin(OpUntagResource, aws.ToString(in.SecretId))
	return finish(flt, func() (*sm.UntagResourceOutput, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		s, err := f.lookup(in.SecretId)
		if err != nil {
			return nil, err
		}
		for _, k := range in.TagKeys {
			if err := checkTagKey(k); err != nil {
				return nil, err
			}
		}
		for _, k := range in.TagKeys {
			s.deleteTag(k)
		}
		s.changed = f.now()
		return &sm.UntagResourceOutput{}, nil
	})
}

// Calls returns how many times each operation was called, faulted calls included.
func (f *SM) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

// Count returns how many times op was called.
func (f *SM) Count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// ResetCalls sets every call count back to zero; the secrets stay.
func (f *SM) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.calls)
}

// Versions returns the labels on every version of the secret, deprecated (unlabelled) ones
// included, which the API hides; nil if the secret does not exist.
func (f *SM) Versions(secretID string) map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.lookup(&secretID)
	if err != nil {
		return nil
	}
	out := map[string][]string{}
	for id, v := range s.versions {
		out[id] = slices.Clone(v.stages)
	}
	return out
}

// Value returns a version's SecretString; ok is false if the secret or version does not exist
// or holds SecretBinary.
func (f *SM) Value(secretID, versionID string) (value string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.lookup(&secretID)
	if err != nil {
		return "", false
	}
	v, ok := s.versions[versionID]
	if !ok || v.str == nil {
		return "", false
	}
	return *v.str, true
}

// Tags returns a copy of the secret's tags; nil if it does not exist.
func (f *SM) Tags(secretID string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.lookup(&secretID)
	if err != nil {
		return nil
	}
	return maps.Clone(s.tags)
}

// Secrets returns the names of every secret, in creation order.
func (f *SM) Secrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.order)
}
