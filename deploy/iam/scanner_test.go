package iam_test

import (
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
)

func TestScanFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		src     string
		want    []string // "site op" for every reference, sorted; "*" marks an interface method
		wantErr string
	}{
		{
			name: "aliased import, interface method",
			src: `package p
import ("context"; awssqs "github.com/aws/aws-sdk-go-v2/service/sqs")
type Q interface {
	ReceiveMessage(ctx context.Context, in *awssqs.ReceiveMessageInput, o ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error)
}`,
			want: []string{"p.Q sqs:ReceiveMessage", "p.Q sqs:ReceiveMessage *"},
		},
		{
			name: "direct call on a concrete client",
			src: `package p
import ("context"; "github.com/aws/aws-sdk-go-v2/service/sqs")
func (s *Svc) purge(ctx context.Context, c *sqs.Client) { c.PurgeQueue(ctx, &sqs.PurgeQueueInput{}) }`,
			want: []string{"p.Svc.purge sqs:PurgeQueue"},
		},
		{
			name: "types package and outputs are not operations",
			src: `package p
import ("github.com/aws/aws-sdk-go-v2/service/kms"; kt "github.com/aws/aws-sdk-go-v2/service/kms/types")
var _ kt.KeyManagerType
var _ *kms.DescribeKeyOutput`,
		},
		{
			name: "renamed method is refused",
			src: `package p
import ("context"; "github.com/aws/aws-sdk-go-v2/service/secretsmanager")
type S interface { Read(ctx context.Context, in *secretsmanager.GetSecretValueInput) error }`,
			want:    []string{"p.S secretsmanager:GetSecretValue", "p.S secretsmanager:GetSecretValue *"},
			wantErr: "p.S.Read takes the input of secretsmanager:GetSecretValue",
		},
		{
			name:    "dot import is refused",
			src:     `package p; import . "github.com/aws/aws-sdk-go-v2/service/kms"; var _ DescribeKeyInput`,
			wantErr: "dot import",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := parser.ParseFile(token.NewFileSet(), "x.go", tc.src, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			refs, err := scanFile("p", f)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
			}
			var got []string
			for _, r := range refs {
				s := r.Site + " " + r.Op
				if r.Iface {
					s += " *"
				}
				got = append(got, s)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("refs = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckExcluded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ref  sdkRef
		bad  bool
	}{
		{"vault interface may declare CreateSecret", sdkRef{Op: "secretsmanager:CreateSecret", Site: "vault.SecretsManager", Iface: true}, false},
		{"vault.Store.Create may build its input", sdkRef{Op: "secretsmanager:CreateSecret", Site: "vault.Store.Create"}, false},
		{"any other CreateSecret fails", sdkRef{Op: "secretsmanager:CreateSecret", Site: "rotator.Vault", Iface: true}, true},
		{"the daemon must not send", sdkRef{Op: "sqs:SendMessage", Site: "notifications.SQS", Iface: true}, true},
		{"a granted call is not excluded", sdkRef{Op: "sqs:ReceiveMessage", Site: "notifications.SQS", Iface: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := checkExcluded([]sdkRef{tc.ref}); (len(got) > 0) != tc.bad {
				t.Errorf("checkExcluded(%+v) = %q, want a problem: %v", tc.ref, got, tc.bad)
			}
		})
	}
}

func TestLike(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"lwa-rotator:*", "lwa-rotator:attempts", true},
		{"lwa-rotator:*", "lwa-rotator:", true},
		{"lwa-rotator:*", "owner", false},
		{"lwa-rotator:?", "lwa-rotator:ab", false},
		{"a*c", "abbbc", true},
	}
	for _, tc := range tests {
		if got := like(tc.pattern, tc.s); got != tc.want {
			t.Errorf("like(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
