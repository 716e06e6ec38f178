package doctor

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

func TestParseRedrive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		arn     string
		count   int
		wantErr bool
	}{
		{`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:q-dlq","maxReceiveCount":10}`, "arn:aws:sqs:us-east-1:1:q-dlq", 10, false},
		{`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:q-dlq","maxReceiveCount":"5"}`, "arn:aws:sqs:us-east-1:1:q-dlq", 5, false},
		{`{"maxReceiveCount":5}`, "", 0, true},
		{`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:q-dlq","maxReceiveCount":"many"}`, "", 0, true},
		{`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:q-dlq"}`, "", 0, true},
		{`{`, "", 0, true},
	}
	for _, tc := range tests {
		arn, n, err := parseRedrive(tc.raw)
		if (err != nil) != tc.wantErr || arn != tc.arn || n != tc.count {
			t.Errorf("parseRedrive(%s) = %q, %d, %v; want %q, %d, error %v", tc.raw, arn, n, err, tc.arn, tc.count, tc.wantErr)
		}
	}
}

type fakeAWS struct {
	queues                                   map[string]map[string]string // url → attributes
	describeKeyCalls, policyCalls, listCalls int
	secretString                             string
}

func (f *fakeAWS) GetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	a, ok := f.queues[aws.ToString(in.QueueUrl)]
	if !ok {
		return nil, &sqstypes.QueueDoesNotExist{Message: aws.String("no such queue")}
	}
	return &sqs.GetQueueAttributesOutput{Attributes: a}, nil
}

func (f *fakeAWS) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String("https://sqs.us-east-1.amazonaws.com/" + aws.ToString(in.QueueOwnerAWSAccountId) + "/" + aws.ToString(in.QueueName))}, nil
}

func (f *fakeAWS) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	f.describeKeyCalls++
	return &kms.DescribeKeyOutput{KeyMetadata: &kmstypes.KeyMetadata{Arn: aws.String(tKeyARN), KeyManager: kmstypes.KeyManagerTypeCustomer, KeyState: kmstypes.KeyStateEnabled}}, nil
}

func (f *fakeAWS) GetKeyPolicy(context.Context, *kms.GetKeyPolicyInput, ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error) {
	f.policyCalls++
	return &kms.GetKeyPolicyOutput{Policy: aws.String(goodKey().Policy)}, nil
}

func (f *fakeAWS) DescribeSecret(_ context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return &secretsmanager.DescribeSecretOutput{ARN: aws.String("arn:aws:secretsmanager:us-east-1:111122223333:secret:" + aws.ToString(in.SecretId)),
		KmsKeyId: aws.String(tKeyARN), VersionIdsToStages: map[string][]string{"v1": {vault.StageCurrent}}}, nil
}

func (f *fakeAWS) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return &secretsmanager.GetSecretValueOutput{VersionId: aws.String("v1"), SecretString: aws.String(f.secretString)}, nil
}

func (f *fakeAWS) ListSecrets(context.Context, *secretsmanager.ListSecretsInput, ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	f.listCalls++
	return &secretsmanager.ListSecretsOutput{}, nil
}

// fakeVault is the daemon's read of each secret: the secret as fakeAWS holds it.
type fakeVault struct {
	reads  int
	secret secret.Value
}

func (v *fakeVault) Read(_ context.Context, id string) (vault.Snapshot, error) {
	v.reads++
	return vault.Snapshot{SecretID: id, Current: vault.Version{ID: "v1", Record: vault.Record{ClientID: tClientID, ClientSecret: v.secret,
		ExpiresAt: time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)}}}, nil
}

type fakeLWA struct{ got secret.Value }

func (l *fakeLWA) Token(_ context.Context, _ string, s secret.Value) (spapi.Token, error) {
	l.got = s
	return spapi.Token{AccessToken: secret.New("Atc|token"), ExpiresIn: time.Hour}, nil
}

// Gather reads each key once however many queues and secrets use it, hands AWSCURRENT to LWA,
// and keeps no secret in the facts it returns.
func TestGatherReadsOnceAndKeepsNoSecret(t *testing.T) {
	t.Parallel()
	const plaintext = "amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef"
	q := func(name string) map[string]string {
		arn := "arn:aws:sqs:us-east-1:111122223333:" + name
		return map[string]string{"QueueArn": arn, "KmsMasterKeyId": tKeyARN, "MessageRetentionPeriod": "1209600",
			"Policy": PolicyDocument(AmazonQueueStatement(arn)), "RedrivePolicy": `{"deadLetterTargetArn":"` + arn + `-dlq","maxReceiveCount":10}`}
	}
	dlq := func(name string) map[string]string {
		return map[string]string{"QueueArn": "arn:aws:sqs:us-east-1:111122223333:" + name, "KmsMasterKeyId": tKeyARN, "MessageRetentionPeriod": "1209600"}
	}
	f := &fakeAWS{queues: map[string]map[string]string{tExpiry: q("lwa-expiry"), tNewSecret: q("lwa-new-secret"),
		tExpiry + "-dlq": dlq("lwa-expiry-dlq"), tNewSecret + "-dlq": dlq("lwa-new-secret-dlq")},
		secretString: `{"clientId":"` + tClientID + `","clientSecret":"` + plaintext + `"}`}
	lwa := &fakeLWA{}
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	cfg := testConfig(t)
	cfg.Endpoints.SPAPI = map[string]string{"na": srv.URL}
	cfg.KMSKeyID = tKeyARN
	v := &fakeVault{secret: secret.New(plaintext)}
	facts := Gather(context.Background(), cfg, Deps{SQS: f, KMS: f, SecretsManager: f, LWA: lwa, HTTP: srv.Client(),
		Vault: v, Apps: []rotator.App{{Name: tApp, ClientID: tClientID, SecretID: "lwa/main-app"}}, Settings: tSettings, Clock: fakeclock.New(tNow)})

	if f.listCalls != 1 || !facts.Listing.Tried || facts.Listing.Err != nil {
		t.Errorf("ListSecrets called %d times (listing %+v); want once, allowed", f.listCalls, facts.Listing)
	}
	if f.describeKeyCalls != 1 || f.policyCalls != 1 {
		t.Errorf("DescribeKey called %d times, GetKeyPolicy %d; want once each for one key", f.describeKeyCalls, f.policyCalls)
	}
	if r := facts.Apps[0].Rotation; v.reads != 1 || r == nil || r.Err != nil || !r.At.Equal(tNow) || r.Snapshot.Current.ID != "v1" {
		t.Errorf("the daemon's read: %d reads, facts %+v; want one read at %s", v.reads, r, tNow)
	} else if !r.Snapshot.Current.Record.ClientSecret.IsZero() {
		t.Error("the facts keep the secret the daemon's read returned")
	}
	if lwa.got.Reveal() != plaintext {
		t.Error("LWA was not asked for a token with AWSCURRENT")
	}
	if dump := fmt.Sprintf("%+v %#v", facts, facts); strings.Contains(dump, "0123456789abcdef0123456789abcdef") {
		t.Error("the facts hold the secret")
	}
	rep := Check(cfg, facts)
	if !rep.OK() || rep.Warned != 0 {
		t.Errorf("healthy fakes: %d failed, %d warned\n%s", rep.Failed, rep.Warned, dump(rep))
	}
	if e := facts.Endpoints[0]; e.TLSVersion == "" || e.Status != http.StatusNotFound {
		t.Errorf("endpoint probe = %+v, want a TLS answer 404", e)
	}
}
