package seed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const clientID = "amzn1.application-oa2-client.0123456789abcdef"

var (
	good  = secret.New("amzn1.oa2-cs.v1.goodgoodgoodgoodgoodgoodgoodgood")
	other = secret.New("amzn1.oa2-cs.v1.otherotherotherotherotherother00")
	dead  = secret.New("amzn1.oa2-cs.v1.deaddeaddeaddeaddeaddeaddeaddead")
)

// fakeSM is at most one secret.
type fakeSM struct {
	exists  bool
	current string // AWSCURRENT's SecretString, "" for no version
	tags    []types.Tag
	pending bool
	creates []*secretsmanager.CreateSecretInput
	puts    []*secretsmanager.PutSecretValueInput
}

func (f *fakeSM) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	if !f.exists {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
	}
	out := &secretsmanager.DescribeSecretOutput{ARN: aws.String("arn:aws:secretsmanager:us-east-1:1:secret:lwa/main-AbCdEf"), Tags: f.tags,
		VersionIdsToStages: map[string][]string{}}
	if f.current != "" {
		out.VersionIdsToStages["v1"] = []string{"AWSCURRENT"}
	}
	if f.pending {
		out.VersionIdsToStages["v2"] = []string{"AWSPENDING"}
	}
	return out, nil
}

func (f *fakeSM) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return &secretsmanager.GetSecretValueOutput{VersionId: aws.String("v1"), SecretString: aws.String(f.current)}, nil
}

func (f *fakeSM) CreateSecret(_ context.Context, in *secretsmanager.CreateSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.CreateSecretOutput, error) {
	f.creates = append(f.creates, in)
	return &secretsmanager.CreateSecretOutput{VersionId: aws.String("c1"), ARN: aws.String("arn:new")}, nil
}

func (f *fakeSM) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	f.puts = append(f.puts, in)
	return &secretsmanager.PutSecretValueOutput{VersionId: aws.String("p1")}, nil
}

// fakeLWA accepts only the secrets it lists; down makes every call fail without an answer.
type fakeLWA struct {
	valid []secret.Value
	down  bool
}

func (f *fakeLWA) Token(_ context.Context, id string, s secret.Value) (spapi.Token, error) {
	if f.down {
		return spapi.Token{}, &spapi.Error{API: "lwa", Op: "token", Kind: spapi.ErrTransient, Message: "connection refused"}
	}
	for _, v := range f.valid {
		if v.Equal(s) && id == clientID {
			return spapi.Token{AccessToken: secret.New("Atc|x")}, nil
		}
	}
	return spapi.Token{}, &spapi.Error{API: "lwa", Op: "token", StatusCode: 401, Code: "invalid_client", Kind: spapi.ErrInvalidClient}
}

func stored(s secret.Value, f vault.Format) string {
	b, err := vault.Encode(vault.Record{ClientID: clientID, ClientSecret: s}, f)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestSeed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sm      fakeSM
		lwa     fakeLWA
		value   secret.Value
		force   bool
		format  vault.Format
		want    Outcome
		wantErr error
	}{
		{name: "absent: created with the key", sm: fakeSM{}, lwa: fakeLWA{valid: []secret.Value{good}}, value: good, want: Created},
		{name: "absent, lambda-sample shape", sm: fakeSM{}, lwa: fakeLWA{valid: []secret.Value{good}}, value: good, format: vault.FormatLambdaSample, want: Created},
		{name: "exists without a value", sm: fakeSM{exists: true}, lwa: fakeLWA{valid: []secret.Value{good}}, value: good, want: Stored},
		{name: "same secret already current", sm: fakeSM{exists: true, current: stored(good, vault.FormatDefault)}, lwa: fakeLWA{valid: []secret.Value{good}}, value: good, want: Unchanged},
		{name: "a different working secret", sm: fakeSM{exists: true, current: stored(other, vault.FormatDefault)}, lwa: fakeLWA{valid: []secret.Value{good, other}}, value: good, wantErr: ErrWouldOverwrite},
		{name: "a different working secret, forced", sm: fakeSM{exists: true, current: stored(other, vault.FormatDefault)}, lwa: fakeLWA{valid: []secret.Value{good, other}}, value: good, force: true, want: Stored},
		{name: "a different dead secret is replaced", sm: fakeSM{exists: true, current: stored(dead, vault.FormatDefault)}, lwa: fakeLWA{valid: []secret.Value{good}}, value: good, want: Stored},
		{name: "an unreadable stored value is replaced", sm: fakeSM{exists: true, current: "not json"}, lwa: fakeLWA{valid: []secret.Value{good}}, value: good, want: Stored},
		{name: "LWA rejects the pasted secret", sm: fakeSM{}, lwa: fakeLWA{}, value: good, wantErr: ErrRejected},
		{name: "LWA unreachable", sm: fakeSM{}, lwa: fakeLWA{down: true}, value: good, wantErr: spapi.ErrTransient},
		{name: "rotation in flight", sm: fakeSM{exists: true, current: stored(dead, vault.FormatDefault),
			tags: []types.Tag{{Key: aws.String(vault.TagRequestedAt), Value: aws.String("2026-06-01T12:00:00Z")}}},
			lwa: fakeLWA{valid: []secret.Value{good}}, value: good, wantErr: ErrWouldOverwrite},
		{name: "pending version", sm: fakeSM{exists: true, current: stored(dead, vault.FormatDefault), pending: true},
			lwa: fakeLWA{valid: []secret.Value{good}}, value: good, wantErr: ErrWouldOverwrite},
		{name: "wrong shape", sm: fakeSM{}, lwa: fakeLWA{valid: []secret.Value{good}}, value: secret.New("hunter2hunter2hunter2"), wantErr: ErrShape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sm, lwa := tc.sm, tc.lwa
			format := tc.format
			if format == "" {
				format = vault.FormatDefault
			}
			o := Options{SecretID: "lwa/main", ClientID: clientID, KMSKeyID: "arn:aws:kms:us-east-1:1:key/k", Format: format, Force: tc.force}
			res, err := Seed(context.Background(), &sm, &lwa, o, tc.value)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Seed = %+v, %v; want %v", res, err, tc.wantErr)
				}
				if len(sm.creates)+len(sm.puts) != 0 {
					t.Fatal("a refused seed wrote to the vault")
				}
				if strings.Contains(err.Error(), strings.TrimPrefix(tc.value.Reveal(), "amzn1.oa2-cs.v1.")) {
					t.Fatal("the error repeats the secret")
				}
				return
			}
			if err != nil {
				t.Fatalf("Seed: %v", err)
			}
			if res.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s", res.Outcome, tc.want)
			}
			var body string
			switch tc.want {
			case Created:
				if len(sm.creates) != 1 || aws.ToString(sm.creates[0].KmsKeyId) != o.KMSKeyID || aws.ToString(sm.creates[0].Name) != o.SecretID {
					t.Fatalf("creates %+v", sm.creates)
				}
				body = aws.ToString(sm.creates[0].SecretString)
			case Stored:
				if len(sm.puts) != 1 || fmt.Sprint(sm.puts[0].VersionStages) != "[AWSCURRENT]" {
					t.Fatalf("puts %+v", sm.puts)
				}
				body = aws.ToString(sm.puts[0].SecretString)
			case Unchanged:
				if len(sm.creates)+len(sm.puts) != 0 {
					t.Fatal("an unchanged seed wrote")
				}
				return
			}
			if body != stored(good, format) {
				t.Fatalf("stored shape is not the vault's %s shape", format)
			}
		})
	}
}

func TestCheckShapeSaysWhatIsWrongWithoutTheValue(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "empty"},
		{"amzn1.application-oa2-client.0123456789abcdef", "client id"},
		{`{"clientSecret":"amzn1.oa2-cs.v1.abcabcabcabcabcabc"}`, "JSON"},
		{"s3cr3tvaluewithoutprefix0000", "does not start with amzn1.oa2-cs.v1."},
		{"amzn1.oa2-cs.v1.abcdabcd abcdabcdabcd", "whitespace"},
		{"amzn1.oa2-cs.v1.abc", "too short"},
		{"amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef", ""},
	}
	for _, tc := range tests {
		err := CheckShape(secret.New(tc.in))
		if tc.want == "" {
			if err != nil {
				t.Errorf("CheckShape(good) = %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckShape = %v, want it to say %q", err, tc.want)
			continue
		}
		if len(tc.in) > 8 && strings.Contains(err.Error(), tc.in[len(tc.in)-8:]) {
			t.Errorf("CheckShape repeats the value: %v", err)
		}
	}
}
