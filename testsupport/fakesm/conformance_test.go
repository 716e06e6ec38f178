package fakesm_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/spapi-tools/lwa-rotator/testsupport/awstest"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/testsupport/moto"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// The model stands in for the client the vault is given.
var (
	_ vault.SecretsManager = (*fakesm.SM)(nil)
	_ api                  = (*fakesm.SM)(nil)
	_ api                  = (*sm.Client)(nil)
)

// api is what the conformance table calls: the vault's interface plus listing.
type api interface {
	vault.SecretsManager
	ListSecrets(ctx context.Context, params *sm.ListSecretsInput, optFns ...func(*sm.Options)) (*sm.ListSecretsOutput, error)
}

// moto is started on first use, so the model's own tests do not wait for it.
var (
	motoOnce   sync.Once
	motoSrv    *moto.Server
	motoClient *sm.Client
	motoErr    error
	secretSeq  atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	motoSrv.Stop()
	os.Exit(code)
}

func motoSM(t *testing.T) *sm.Client {
	t.Helper()
	motoOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		motoSrv, motoErr = moto.Start(ctx, nil)
		if motoErr == nil {
			motoClient = awstest.NewClients(motoSrv.URL, nil).SecretsManager
		}
	})
	if motoErr != nil {
		t.Fatalf("the conformance table needs moto_server: %v", motoErr)
	}
	return motoClient
}

// tok makes a ClientRequestToken the service accepts (32 to 64 characters).
func tok(n int) string { return fmt.Sprintf("%032d", n) }

// step is one call; wantCode is the AWS error code it must fail with ("" for success).
type step struct {
	op string // put, move, tag, untag, get, create
	// put
	token, value string
	stages       []string
	// move: stage from version `from` to version `to` ("" leaves the parameter out)
	stage, to, from string
	// tag, untag
	tags []types.Tag
	keys []string
	// get: by token and/or stage; wantValue is what it must read
	wantValue string
	// secret overrides the row's secret name (an unknown secret)
	secret   string
	wantCode string
}

func put(token, value string, stages ...string) step {
	return step{op: "put", token: token, value: value, stages: stages}
}
func move(stage, to, from string) step { return step{op: "move", stage: stage, to: to, from: from} }
func fails(s step, code string) step   { s.wantCode = code; return s }

func nTags(prefix string, n int) []types.Tag {
	var out []types.Tag
	for i := range n {
		out = append(out, types.Tag{Key: aws.String(fmt.Sprintf("%s-%d", prefix, i)), Value: aws.String("v")})
	}
	return out
}

func tag(key, value string) types.Tag {
	return types.Tag{Key: aws.String(key), Value: aws.String(value)}
}

const (
	current  = "AWSCURRENT"
	previous = "AWSPREVIOUS"
	pending  = "AWSPENDING"

	notFound      = "ResourceNotFoundException"
	exists        = "ResourceExistsException"
	invalid       = "InvalidParameterException"
	validationErr = "ValidationException"
)

// conformance rows start from a secret whose first version is tok(0) holding "v0" as AWSCURRENT.
// modelOnly rows are rules moto does not implement; they run against the model only.
var conformance = []struct {
	name      string
	modelOnly string // why moto cannot check the row; "" runs it against moto too
	steps     []step
	// wantStages is DescribeSecret's VersionIdsToStages afterwards (labels sorted).
	wantStages map[string][]string
	// wantValues are read back by VersionId, deprecated versions included.
	wantValues map[string]string
	// wantTags counts the secret's tags afterwards (-1: not checked).
	wantTags int
}{
	{name: "put without labels makes the new version current and the old one previous",
		steps:      []step{put(tok(1), "v1")},
		wantStages: map[string][]string{tok(0): {previous}, tok(1): {current}}, wantTags: -1},
	{name: "a second put moves AWSPREVIOUS off its holder, which is then deprecated and hidden",
		modelOnly:  "moto lists deprecated versions with no labels in VersionIdsToStages",
		steps:      []step{put(tok(1), "v1"), put(tok(2), "v2")},
		wantStages: map[string][]string{tok(1): {previous}, tok(2): {current}},
		wantValues: map[string]string{tok(0): "v0", tok(1): "v1", tok(2): "v2"}, wantTags: -1},
	{name: "put with AWSPENDING leaves AWSCURRENT where it is",
		steps:      []step{put(tok(1), "v1", pending)},
		wantStages: map[string][]string{tok(0): {current}, tok(1): {pending}}, wantTags: -1},
	{name: "put moves a label it is given from whichever version had it",
		modelOnly:  "moto lists the deprecated version the label left",
		steps:      []step{put(tok(1), "v1", pending), put(tok(2), "v2", pending)},
		wantStages: map[string][]string{tok(0): {current}, tok(2): {pending}},
		wantValues: map[string]string{tok(1): "v1"}, wantTags: -1},
	{name: "a reused token with the same value succeeds and moves no label",
		modelOnly:  "moto applies the retried put's labels again (here AWSCURRENT) instead of ignoring the request",
		steps:      []step{put(tok(1), "v1", pending), put(tok(1), "v1")},
		wantStages: map[string][]string{tok(0): {current}, tok(1): {pending}}, wantTags: -1},
	{name: "a reused token with another value fails and keeps the first value",
		modelOnly:  "moto lets a reused ClientRequestToken overwrite the version",
		steps:      []step{put(tok(1), "v1", pending), fails(put(tok(1), "other", pending), exists)},
		wantStages: map[string][]string{tok(0): {current}, tok(1): {pending}},
		wantValues: map[string]string{tok(1): "v1"}, wantTags: -1},
	{name: "moving AWSCURRENT naming its holder makes the holder previous",
		steps:      []step{put(tok(1), "v1", pending), move(current, tok(1), tok(0))},
		wantStages: map[string][]string{tok(0): {previous}, tok(1): {current, pending}}, wantTags: -1},
	{name: "moving AWSCURRENT takes AWSPREVIOUS off its old holder",
		modelOnly:  "moto lists the deprecated version AWSPREVIOUS left",
		steps:      []step{put(tok(1), "v1"), put(tok(2), "v2", pending), move(current, tok(2), tok(1))},
		wantStages: map[string][]string{tok(1): {previous}, tok(2): {current, pending}},
		wantValues: map[string]string{tok(0): "v0"}, wantTags: -1},
	{name: "moving AWSCURRENT back to the previous version swaps the two",
		steps:      []step{put(tok(1), "v1"), move(current, tok(0), tok(1))},
		wantStages: map[string][]string{tok(0): {current}, tok(1): {previous}}, wantTags: -1},
	{name: "moving AWSCURRENT without RemoveFromVersionId fails",
		steps:      []step{put(tok(1), "v1", pending), fails(move(current, tok(1), ""), invalid)},
		wantStages: map[string][]string{tok(0): {current}, tok(1): {pending}}, wantTags: -1},
	{name: "moving AWSCURRENT naming the wrong holder fails",
		steps:      []step{put(tok(1), "v1", pending), put(tok(2), "v2", "OTHER"), fails(move(current, tok(1), tok(2)), invalid)},
		wantStages: map[string][]string{tok(0): {current}, tok(1): {pending}, tok(2): {"OTHER"}}, wantTags: -1},
	{name: "moving AWSPENDING without RemoveFromVersionId fails",
		modelOnly:  "moto moves AWSPENDING without RemoveFromVersionId",
		steps:      []step{put(tok(1), "v1", pending), put(tok(2), "v2", "OTHER"), fails(move(pending, tok(2), ""), invalid)},
		wantStages: map[string][]string{tok(0): {current}, tok(1): {pending}, tok(2): {"OTHER"}}, wantTags: -1},
	{name: "moving AWSPENDING naming its holder",
		modelOnly:  "moto lists the deprecated version the label left",
		steps:      []step{put(tok(1), "v1", pending), put(tok(2), "v2", "OTHER"), move(pending, tok(2), tok(1))},
		wantStages: map[string][]string{tok(0): {current}, tok(2): {pending, "OTHER"}}, wantTags: -1},
	{name: "attaching a label nobody holds needs no RemoveFromVersionId",
		steps:      []step{put(tok(1), "v1", "OTHER"), move(pending, tok(1), "")},
		wantStages: map[string][]string{tok(0): {current}, tok(1): {pending, "OTHER"}}, wantTags: -1},
	{name: "removing a label from its holder deprecates a version left without labels",
		modelOnly:  "moto lists the deprecated version",
		steps:      []step{put(tok(1), "v1", pending), move(pending, "", tok(1))},
		wantStages: map[string][]string{tok(0): {current}},
		wantValues: map[string]string{tok(1): "v1"}, wantTags: -1},
	{name: "removing a label from a version that does not hold it fails",
		steps:      []step{put(tok(1), "v1", pending), fails(move(pending, "", tok(0)), invalid)},
		wantStages: map[string][]string{tok(0): {current}, tok(1): {pending}}, wantTags: -1},
	{name: "AWSCURRENT cannot just be removed",
		modelOnly:  "moto removes AWSCURRENT when asked",
		steps:      []step{fails(move(current, "", tok(0)), invalid)},
		wantStages: map[string][]string{tok(0): {current}}, wantTags: -1},
	{name: "moving a label to an unknown version fails",
		// The brief and the vault's ErrNotFound mapping take ResourceNotFoundException (the API
		// reference lists it for UpdateSecretVersionStage); moto answers InvalidParameterException.
		modelOnly:  "moto answers InvalidParameterException for an unknown MoveToVersionId",
		steps:      []step{fails(move(pending, tok(9), ""), notFound)},
		wantStages: map[string][]string{tok(0): {current}}, wantTags: -1},
	{name: "reads by label and by id",
		steps: []step{put(tok(1), "v1", pending),
			{op: "get", stage: pending, wantValue: "v1"}, {op: "get", token: tok(0), wantValue: "v0"},
			{op: "get", wantValue: "v0"}, {op: "get", token: tok(1), stage: pending, wantValue: "v1"}},
		wantStages: map[string][]string{tok(0): {current}, tok(1): {pending}}, wantTags: -1},
	{name: "unknown secret, version and label are not found",
		steps: []step{fails(step{op: "get", secret: "no-such-secret"}, notFound),
			fails(step{op: "put", secret: "no-such-secret", token: tok(1), value: "v1"}, notFound),
			fails(step{op: "get", token: tok(7)}, notFound), fails(step{op: "get", stage: pending}, notFound),
			fails(step{op: "describe", secret: "no-such-secret"}, notFound)},
		wantStages: map[string][]string{tok(0): {current}}, wantTags: -1},
	{name: "creating a secret under a taken name fails",
		steps:      []step{fails(step{op: "create"}, exists)},
		wantStages: map[string][]string{tok(0): {current}}, wantTags: -1},
	{name: "tags: fifty fit, replacing one at the limit is fine, and untag removes",
		steps: []step{{op: "tag", tags: nTags("team", 50)}, {op: "tag", tags: []types.Tag{tag("team-0", "w")}},
			{op: "untag", keys: []string{"team-1", "never-set"}}},
		wantStages: map[string][]string{tok(0): {current}}, wantTags: 49},
	{name: "tags: a fifty-first is refused and the request changes nothing",
		modelOnly:  "moto ignores the tag limit",
		steps:      []step{{op: "tag", tags: nTags("team", 49)}, fails(step{op: "tag", tags: nTags("more", 2)}, invalid)},
		wantStages: map[string][]string{tok(0): {current}}, wantTags: 49},
	{name: "tags: lengths and characters",
		modelOnly: "moto ignores tag lengths and characters",
		steps: []step{{op: "tag", tags: []types.Tag{tag(strings.Repeat("k", 128), strings.Repeat("v", 256))}},
			fails(step{op: "tag", tags: []types.Tag{tag(strings.Repeat("k", 129), "v")}}, validationErr),
			fails(step{op: "tag", tags: []types.Tag{tag("k", strings.Repeat("v", 257))}}, validationErr),
			fails(step{op: "tag", tags: []types.Tag{tag("k", "a;b")}}, invalid),
			fails(step{op: "tag", tags: []types.Tag{tag("aws:owner", "x")}}, invalid)},
		wantStages: map[string][]string{tok(0): {current}}, wantTags: 1},
}

func TestConformance(t *testing.T) {
	t.Parallel()
	backends := []struct {
		name string
		make func(t *testing.T) api
		moto bool
	}{
		{"model", func(*testing.T) api { return fakesm.New(fakesm.Options{}) }, false},
		{"moto", func(t *testing.T) api { return motoSM(t) }, true},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, row := range conformance {
				t.Run(row.name, func(t *testing.T) {
					if b.moto && row.modelOnly != "" {
						t.Skip("model only: " + row.modelOnly)
					}
					t.Parallel()
					runRow(t, b.make(t), row.steps, row.wantStages, row.wantValues, row.wantTags)
				})
			}
		})
	}
}

func runRow(t *testing.T, c api, steps []step, wantStages map[string][]string, wantValues map[string]string, wantTags int) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("conformance/%s-%d", strings.NewReplacer(" ", "_", ",", "", ":", "").Replace(t.Name()), secretSeq.Add(1))
	if _, err := c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v0"),
		ClientRequestToken: aws.String(tok(0))}); err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	for i, s := range steps {
		id := name
		if s.secret != "" {
			id = s.secret
		}
		var err error
		var got string
		switch s.op {
		case "create":
			_, err = c.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(id), SecretString: aws.String("again")})
		case "put":
			_, err = c.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(id), ClientRequestToken: aws.String(s.token),
				SecretString: aws.String(s.value), VersionStages: s.stages})
		case "move":
			_, err = c.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String(id),
				VersionStage: aws.String(s.stage), MoveToVersionId: optional(s.to), RemoveFromVersionId: optional(s.from)})
		case "tag":
			_, err = c.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String(id), Tags: s.tags})
		case "untag":
			_, err = c.UntagResource(ctx, &sm.UntagResourceInput{SecretId: aws.String(id), TagKeys: s.keys})
		case "describe":
			_, err = c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(id)})
		case "get":
			var out *sm.GetSecretValueOutput
			out, err = c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(id), VersionId: optional(s.token),
				VersionStage: optional(s.stage)})
			if err == nil {
				got = aws.ToString(out.SecretString)
			}
		default:
			t.Fatalf("step %d: unknown op %q", i, s.op)
		}
		if code := errCode(err); code != s.wantCode {
			t.Fatalf("step %d (%s): error %v (code %q), want code %q", i, s.op, err, code, s.wantCode)
		}
		if s.wantValue != "" && got != s.wantValue {
			t.Errorf("step %d: read %q, want %q", i, got, s.wantValue)
		}
	}
	d, err := c.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	if got := sorted(d.VersionIdsToStages); !maps.EqualFunc(got, wantStages, slices.Equal) {
		t.Errorf("VersionIdsToStages = %v, want %v", got, wantStages)
	}
	if wantTags >= 0 && len(d.Tags) != wantTags {
		t.Errorf("%d tags, want %d", len(d.Tags), wantTags)
	}
	for id, want := range wantValues {
		out, err := c.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(name), VersionId: aws.String(id)})
		if err != nil || aws.ToString(out.SecretString) != want {
			t.Errorf("version %s reads %v, %v; want %q", id, out, err, want)
		}
	}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func errCode(err error) string {
	if err == nil {
		return ""
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return "not an API error: " + err.Error()
}

func sorted(m map[string][]string) map[string][]string {
	out := map[string][]string{}
	for k, v := range m {
		out[k] = slices.Sorted(slices.Values(v))
	}
	return out
}
