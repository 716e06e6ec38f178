package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/vault"
)

const (
	tKeyARN    = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	tOtherKey  = "arn:aws:kms:us-east-1:111122223333:key/99999999-12ab-34cd-56ef-1234567890ab"
	tExpiry    = "https://sqs.us-east-1.amazonaws.com/111122223333/lwa-expiry"
	tNewSecret = "https://sqs.us-east-1.amazonaws.com/111122223333/lwa-new-secret"
	tClientID  = "amzn1.application-oa2-client.0123456789abcdef"
	tApp       = "main-app"
)

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(`
kmsKeyId: alias/lwa
queues: {expiry: `+tExpiry+`, newSecret: `+tNewSecret+`}
applications:
  - {name: `+tApp+`, clientId: `+tClientID+`, region: na, secretId: lwa/main-app}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func arnOf(url string) string {
	return "arn:aws:sqs:us-east-1:111122223333:" + url[strings.LastIndex(url, "/")+1:]
}

func rootStatement() Statement {
	return Statement{Sid: "Root", Effect: "Allow", Principal: map[string]string{"AWS": "arn:aws:iam::111122223333:root"}, Action: []string{"kms:*"}, Resource: "*"}
}

func goodKey() *KeyFacts {
	return &KeyFacts{ID: "alias/lwa", ARN: tKeyARN, Manager: "CUSTOMER", State: "Enabled",
		Policy: PolicyDocument(rootStatement(), AmazonKeyStatement("us-east-1"))}
}

func goodQueue(url string, uses string, key *KeyFacts) QueueFacts {
	arn := arnOf(url)
	return QueueFacts{URL: url, Uses: []string{uses}, Key: key, MaxReceiveCount: 10,
		Attrs: map[string]string{"QueueArn": arn, "KmsMasterKeyId": tKeyARN, "MessageRetentionPeriod": "1209600",
			"Policy": PolicyDocument(AmazonQueueStatement(arn)), "RedrivePolicy": `{"deadLetterTargetArn":"` + arn + `-dlq","maxReceiveCount":10}`},
		DLQ: &DLQFacts{ARN: arn + "-dlq", URL: url + "-dlq",
			Attrs: map[string]string{"QueueArn": arn + "-dlq", "KmsMasterKeyId": tKeyARN, "MessageRetentionPeriod": "1209600"}}}
}

// The settings of rotator/decision_examples_test.go, whose rows work out the literal times below;
// doctor read the secret at tNow.
var (
	tSettings = rotator.Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
		ProbeEvery: 24 * time.Hour, CanaryEvery: 7 * 24 * time.Hour, RotateInterval: time.Minute}
	tNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
)

func goodRotation() *RotationFacts {
	return &RotationFacts{App: rotator.App{Name: tApp, ClientID: tClientID, SecretID: "lwa/main-app"}, At: tNow,
		Snapshot: vault.Snapshot{SecretID: "lwa/main-app", Current: vault.Version{ID: "v2",
			Record: vault.Record{ClientID: tClientID, ExpiresAt: time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)}}}}
}

func goodFacts() Facts {
	key := goodKey()
	return Facts{
		Settings: tSettings,
		Key:      key,
		Queues:   []QueueFacts{goodQueue(tExpiry, "expiry", key), goodQueue(tNewSecret, "newSecret", key)},
		Apps: []AppFacts{{Name: tApp, SecretID: "lwa/main-app", ClientID: tClientID,
			ARN: "arn:aws:secretsmanager:us-east-1:111122223333:secret:lwa/main-app-AbCdEf", KMSKeyID: "alias/lwa", Key: key,
			Stages: map[string][]string{"v2": {vault.StageCurrent}, "v1": {vault.StagePrevious}}, TagKeys: []string{"owner", vault.TagNoticedExpiry},
			CurrentVersion: "v2", RecordClientID: tClientID, TokenTried: true, Rotation: goodRotation()}},
		Endpoints: []EndpointFacts{{Region: "na", URL: "https://sellingpartnerapi-na.amazon.com", Apps: []string{tApp}, Status: 403, TLSVersion: "TLS 1.3"}},
		Listing:   ListingFacts{Tried: true},
	}
}

var (
	errDenied = &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}
	// tooMany is one foreign tag more than leaves room for the daemon's.
	tooMany = func() []string {
		var out []string
		for i := range vault.MaxTags - len(vault.StateTags) + 1 {
			out = append(out, fmt.Sprintf("team-%d", i))
		}
		return out
	}()
)

func TestChecks(t *testing.T) {
	t.Parallel()
	q0 := func(f *Facts) *QueueFacts { return &f.Queues[0] }
	app := func(f *Facts) *AppFacts { return &f.Apps[0] }
	tests := []struct {
		name   string
		break_ func(f *Facts)
		// want lists every check that is not ok, as "id subject status".
		want []string
		// fix must appear in the fix of the first item of want.
		fix string
	}{
		{name: "a healthy set-up", break_: func(*Facts) {}},
		{name: "listing refused", break_: func(f *Facts) { f.Listing.Err = fmt.Errorf("listing: %w", errDenied) },
			want: []string{"secrets-listing secretsmanager:ListSecrets warn"}, fix: "SecretsManagerListSecrets"},
		{name: "listing unreachable", break_: func(f *Facts) { f.Listing.Err = errors.New("dial tcp: i/o timeout") },
			want: []string{"secrets-listing secretsmanager:ListSecrets warn"}, fix: "network path"},
		{name: "listing not tried (a client without it)", break_: func(f *Facts) { f.Listing = ListingFacts{} }},
		{name: "configured key unreadable", break_: func(f *Facts) { f.Key.DescribeErr = fmt.Errorf("describing: %w", errDenied) },
			// the queue keys share the fact, so their key policy check fails too
			want: []string{"kms-key alias/lwa fail", "queue-key-policy " + tExpiry + " fail", "queue-key-policy " + tNewSecret + " fail"}, fix: "kms:DescribeKey"},
		{name: "configured key is AWS managed", break_: func(f *Facts) {
			f.Key = &KeyFacts{ID: "alias/aws/secretsmanager", ARN: tOtherKey, Manager: "AWS", State: "Enabled"}
		},
			want: []string{"kms-key alias/aws/secretsmanager fail", "secret-key main-app fail"}, fix: "customer-managed"},
		{name: "configured key pending deletion", break_: func(f *Facts) { f.Key.State = "PendingDeletion" },
			want: []string{"kms-key alias/lwa fail", "queue-key-policy " + tExpiry + " fail", "queue-key-policy " + tNewSecret + " fail"}, fix: "enable-key"},
		{name: "queue missing", break_: func(f *Facts) {
			q0(f).Err = fmt.Errorf("reading: %w", &sqstypes.QueueDoesNotExist{Message: aws.String("The specified queue does not exist.")})
		}, want: []string{"queue-exists " + tExpiry + " fail"}, fix: "queues.expiry"},
		{name: "queue unreadable", break_: func(f *Facts) { q0(f).Err = fmt.Errorf("reading: %w", errDenied) },
			want: []string{"queue-exists " + tExpiry + " fail"}, fix: "sqs:GetQueueAttributes"},
		{name: "FIFO queue", break_: func(f *Facts) { q0(f).Attrs["FifoQueue"] = "true"; q0(f).DLQ.Attrs["FifoQueue"] = "true" },
			want: []string{"queue-standard " + tExpiry + " fail"}, fix: "standard queue"},
		{name: "no SSE", break_: func(f *Facts) {
			delete(q0(f).Attrs, "KmsMasterKeyId")
			q0(f).Key = nil
			q0(f).Attrs["SqsManagedSseEnabled"] = "false"
		},
			want: []string{"queue-sse " + tExpiry + " fail"}, fix: "KmsMasterKeyId=" + tKeyARN},
		{name: "SSE-SQS is enough", break_: func(f *Facts) {
			delete(q0(f).Attrs, "KmsMasterKeyId")
			q0(f).Key = nil
			q0(f).Attrs["SqsManagedSseEnabled"] = "true"
		}},
		{name: "SSE with the AWS-managed SQS key", break_: func(f *Facts) {
			q0(f).Attrs["KmsMasterKeyId"] = "alias/aws/sqs"
			q0(f).Key = &KeyFacts{ID: "alias/aws/sqs", ARN: tOtherKey, Manager: "AWS", State: "Enabled"}
		}, want: []string{"queue-key-policy " + tExpiry + " fail"}, fix: "customer-managed key"},
		{name: "key policy without Amazon", break_: func(f *Facts) { f.Key.Policy = PolicyDocument(rootStatement()) },
			want: []string{"queue-key-policy " + tExpiry + " fail", "queue-key-policy " + tNewSecret + " fail"}, fix: AmazonKeyStatement("us-east-1").JSON()},
		{name: "key policy with the SQS service principal for Amazon's account", break_: func(f *Facts) {
			f.Key.Policy = `{"Statement":[{"Effect":"Allow","Principal":{"Service":"sqs.amazonaws.com"},"Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"437568002678"}}}]}`
		}},
		{name: "key policy allowing only Decrypt", break_: func(f *Facts) {
			f.Key.Policy = `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"kms:Decrypt","Resource":"*"}]}`
		}, want: []string{"queue-key-policy " + tExpiry + " fail", "queue-key-policy " + tNewSecret + " fail"}, fix: `"kms:GenerateDataKey"`},
		{name: "key policy denying Amazon", break_: func(f *Facts) {
			f.Key.Policy = PolicyDocument(AmazonKeyStatement("us-east-1"), Statement{Sid: "NoOutsiders", Effect: "Deny", Principal: map[string]string{"AWS": "437568002678"}, Action: []string{"kms:*"}, Resource: "*"})
		}, want: []string{"queue-key-policy " + tExpiry + " fail", "queue-key-policy " + tNewSecret + " fail"}, fix: "Deny"},
		{name: "key policy unreadable", break_: func(f *Facts) { f.Key.Policy = ""; f.Key.PolicyErr = fmt.Errorf("reading: %w", errDenied) },
			want: []string{"queue-key-policy " + tExpiry + " fail", "queue-key-policy " + tNewSecret + " fail"}, fix: "doctor-policy.json"},
		{name: "no queue policy", break_: func(f *Facts) { delete(q0(f).Attrs, "Policy") },
			want: []string{"queue-policy " + tExpiry + " fail"}, fix: PolicyDocument(AmazonQueueStatement(arnOf(tExpiry)))},
		{name: "queue policy without Amazon's statement", break_: func(f *Facts) {
			q0(f).Attrs["Policy"] = `{"Version":"2012-10-17","Statement":[{"Sid":"Mine","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sqs:*","Resource":"*"}]}`
		}, want: []string{"queue-policy " + tExpiry + " fail"}, fix: AmazonQueueStatement(arnOf(tExpiry)).JSON()},
		{name: "queue policy with SendMessage only", break_: func(f *Facts) {
			q0(f).Attrs["Policy"] = `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::437568002678:root"},"Action":"sqs:SendMessage","Resource":"` + arnOf(tExpiry) + `"}}`
		}, want: []string{"queue-policy " + tExpiry + " fail"}, fix: "sqs:GetQueueAttributes"},
		{name: "queue policy open to everyone", break_: func(f *Facts) {
			q0(f).Attrs["Policy"] = `{"Statement":{"Effect":"Allow","Principal":"*","Action":"sqs:*","Resource":"*"}}`
		}, want: []string{"queue-policy " + tExpiry + " warn"}, fix: AmazonQueueStatement(arnOf(tExpiry)).JSON()},
		{name: "queue policy under a condition doctor cannot see", break_: func(f *Facts) {
			q0(f).Attrs["Policy"] = `{"Statement":{"Sid":"Org","Effect":"Allow","Principal":{"AWS":"437568002678"},"Action":"sqs:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}}`
		}, want: []string{"queue-policy " + tExpiry + " warn"}, fix: "conditions"},
		{name: "queue policy not JSON", break_: func(f *Facts) { q0(f).Attrs["Policy"] = "{" },
			want: []string{"queue-policy " + tExpiry + " fail"}, fix: "AmazonSpApiNotificationsDeliver"},
		{name: "retention one day", break_: func(f *Facts) { q0(f).Attrs["MessageRetentionPeriod"] = "86400" },
			want: []string{"queue-retention " + tExpiry + " fail"}, fix: "MessageRetentionPeriod=1209600"},
		{name: "retention five days", break_: func(f *Facts) {
			q0(f).Attrs["MessageRetentionPeriod"] = "432000"
			q0(f).DLQ.Attrs["MessageRetentionPeriod"] = "432000"
		},
			want: []string{"queue-retention " + tExpiry + " warn"}, fix: "MessageRetentionPeriod=1209600"},
		{name: "no redrive policy", break_: func(f *Facts) { delete(q0(f).Attrs, "RedrivePolicy"); q0(f).DLQ = nil; q0(f).MaxReceiveCount = 0 },
			want: []string{"queue-dlq " + tExpiry + " fail"}, fix: "RedrivePolicy"},
		{name: "redrive to a missing queue", break_: func(f *Facts) {
			q0(f).DLQ = &DLQFacts{ARN: arnOf(tExpiry) + "-dlq", Err: fmt.Errorf("finding: %w", &sqstypes.QueueDoesNotExist{})}
		}, want: []string{"queue-dlq " + tExpiry + " fail"}, fix: "lwa-expiry-dlq"},
		{name: "unreadable redrive policy", break_: func(f *Facts) { q0(f).DLQ = nil; q0(f).RedriveErr = errors.New("RedrivePolicy is not valid JSON") },
			want: []string{"queue-dlq " + tExpiry + " fail"}, fix: "RedrivePolicy"},
		{name: "DLQ of the other type", break_: func(f *Facts) { q0(f).DLQ.Attrs["FifoQueue"] = "true" },
			want: []string{"queue-dlq " + tExpiry + " fail"}, fix: "standard"},
		{name: "maxReceiveCount 1", break_: func(f *Facts) { q0(f).MaxReceiveCount = 1 },
			want: []string{"queue-max-receive " + tExpiry + " fail"}, fix: "maxReceiveCount to 10"},
		{name: "maxReceiveCount 5", break_: func(f *Facts) { q0(f).MaxReceiveCount = 5 },
			want: []string{"queue-max-receive " + tExpiry + " warn"}, fix: "maxReceiveCount to 10"},
		{name: "refused messages expire before the DLQ", break_: func(f *Facts) {
			q0(f).MaxReceiveCount = 700 // × 15m = 7.3 days
			q0(f).Attrs["MessageRetentionPeriod"] = "604800"
			q0(f).DLQ.Attrs["MessageRetentionPeriod"] = "604800"
		}, want: []string{"queue-max-receive " + tExpiry + " fail"}, fix: "queues.rejectedRetry"},
		{name: "unencrypted DLQ", break_: func(f *Facts) { delete(q0(f).DLQ.Attrs, "KmsMasterKeyId") },
			want: []string{"dlq-sse " + tExpiry + "-dlq fail"}, fix: "KmsMasterKeyId"},
		{name: "DLQ keeps messages shorter than the queue", break_: func(f *Facts) { q0(f).DLQ.Attrs["MessageRetentionPeriod"] = "345600" },
			want: []string{"dlq-retention " + tExpiry + "-dlq warn"}, fix: "MessageRetentionPeriod=1209600"},
		{name: "secret missing", break_: func(f *Facts) {
			*app(f) = AppFacts{Name: tApp, SecretID: "lwa/main-app", ClientID: tClientID, DescribeErr: fmt.Errorf("describing: %w", &smtypes.ResourceNotFoundException{})}
		}, want: []string{"secret-exists main-app fail"}, fix: "--kms-key-id alias/lwa"},
		{name: "secret unreadable", break_: func(f *Facts) {
			*app(f) = AppFacts{Name: tApp, SecretID: "lwa/main-app", DescribeErr: fmt.Errorf("describing: %w", errDenied)}
		}, want: []string{"secret-exists main-app fail"}, fix: "secretsmanager:DescribeSecret"},
		{name: "secret scheduled for deletion", break_: func(f *Facts) { app(f).Deleted = true },
			want: []string{"secret-exists main-app fail"}, fix: "restore-secret"},
		{name: "secret on the AWS managed key", break_: func(f *Facts) { app(f).KMSKeyID = ""; app(f).Key = nil },
			want: []string{"secret-key main-app fail"}, fix: "--kms-key-id " + tKeyARN},
		{name: "secret on another key", break_: func(f *Facts) {
			app(f).KMSKeyID = tOtherKey
			app(f).Key = &KeyFacts{ID: tOtherKey, ARN: tOtherKey, Manager: "CUSTOMER", State: "Enabled"}
		}, want: []string{"secret-key main-app fail"}, fix: "update-secret --secret-id lwa/main-app --kms-key-id " + tKeyARN},
		{name: "secret value not a record", break_: func(f *Facts) {
			app(f).ValueErr = fmt.Errorf("parsing: %w: no client secret", vault.ErrMalformed)
			app(f).TokenTried, app(f).RecordClientID = false, ""
		}, want: []string{"secret-record main-app fail"}, fix: "clientSecret"},
		{name: "secret value unreadable", break_: func(f *Facts) {
			app(f).ValueErr = fmt.Errorf("reading: %w", errDenied)
			app(f).TokenTried, app(f).RecordClientID = false, ""
		}, want: []string{"secret-record main-app fail"}, fix: "kms:Decrypt"},
		{name: "record of another client", break_: func(f *Facts) { app(f).RecordClientID = "amzn1.application-oa2-client.other" },
			want: []string{"secret-record main-app fail"}, fix: "clientId"},
		{name: "a newer secret staged", break_: func(f *Facts) {
			app(f).Stages["v3"] = []string{vault.StagePending}
			app(f).Rotation.Snapshot.Pending = &vault.Version{ID: "v3", Record: vault.Record{ClientID: tClientID, ExpiresAt: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}}
		}, want: []string{"secret-pending main-app warn"}, fix: "Keep the label"},
		{name: "a stale secret staged", break_: func(f *Facts) {
			app(f).Stages["v3"] = []string{vault.StagePending}
			app(f).Rotation.Snapshot.Pending = &vault.Version{ID: "v3", Record: vault.Record{ClientID: tClientID, ExpiresAt: time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)}}
		}, want: []string{"secret-pending main-app warn"}, fix: "--remove-from-version-id v3"},
		{name: "AWSPENDING on a secret the daemon cannot read", break_: func(f *Facts) {
			app(f).Stages["v3"] = []string{vault.StagePending}
			app(f).Rotation.Snapshot, app(f).Rotation.Err = vault.Snapshot{}, fmt.Errorf("reading version v3: %w", vault.ErrMalformed)
		}, want: []string{"secret-pending main-app warn", "rotation main-app warn"}, fix: "make the secret readable"},
		{name: "AWSPENDING without the daemon's read", break_: func(f *Facts) {
			app(f).Stages["v3"] = []string{vault.StagePending}
			app(f).Rotation = nil
		}, want: []string{"secret-pending main-app warn"}, fix: "run doctor again"},
		{name: "renewal due and the daemon has not acted", break_: func(f *Facts) {
			app(f).Rotation.Snapshot.Current.Record.ExpiresAt = time.Date(2026, 6, 20, 0, 0, 0, 0, time.UTC)
		}, want: []string{"rotation main-app warn"}, fix: "make sure the daemon is running"},
		{name: "overdue", break_: func(f *Facts) {
			app(f).Rotation.Snapshot.State = vault.RotationState{RequestedAt: tNow.Add(-90 * time.Minute), LastCallAt: tNow.Add(-90 * time.Minute), RotationID: "r1"}
		}, want: []string{"rotation main-app warn"}, fix: "make sure the daemon is running"},
		{name: "a rotation in flight within its deadline", break_: func(f *Facts) {
			app(f).Rotation.Snapshot.State = vault.RotationState{RequestedAt: tNow.Add(-30 * time.Minute), LastCallAt: tNow.Add(-30 * time.Minute), RotationID: "r1"}
		}},
		{name: "expired", break_: func(f *Facts) {
			app(f).Rotation.Snapshot.Current.Record.ExpiresAt = tNow.Add(-time.Minute)
		}, want: []string{"rotation main-app warn"}, fix: "lwa-rotator seed --app main-app --force"},
		{name: "no AWSCURRENT for the daemon", break_: func(f *Facts) {
			app(f).Rotation.Snapshot, app(f).Rotation.Err = vault.Snapshot{}, fmt.Errorf("reading: %w", vault.ErrNoCurrent)
		}, want: []string{"rotation main-app warn"}, fix: "lwa-rotator seed --app main-app"},
		{name: "AWSPENDING left on the current version is finished", break_: func(f *Facts) { app(f).Stages["v2"] = []string{vault.StageCurrent, vault.StagePending} }},
		{name: "no room for the daemon's tags", break_: func(f *Facts) { app(f).TagKeys = tooMany },
			want: []string{"secret-tags main-app fail"}, fix: "remove at least 1 tags"},
		{name: "exactly room for the daemon's tags", break_: func(f *Facts) { app(f).TagKeys = append(slices.Clip(tooMany[:len(tooMany)-1]), vault.TagAttempts) }},
		{name: "LWA rejects AWSCURRENT", break_: func(f *Facts) {
			app(f).TokenErr = &spapi.Error{API: "lwa", Op: "token", StatusCode: 401, Code: "invalid_client", Message: "Client authentication failed", Kind: spapi.ErrInvalidClient}
		}, want: []string{"lwa-token main-app fail"}, fix: "Developer Console"},
		{name: "LWA unreachable", break_: func(f *Facts) {
			app(f).TokenErr = &spapi.Error{API: "lwa", Op: "token", Kind: spapi.ErrTransient, Err: errors.New("connection refused")}
		}, want: []string{"lwa-token main-app fail"}, fix: "network path"},
		{name: "SP-API endpoint unreachable", break_: func(f *Facts) { f.Endpoints[0].Err = errors.New("HEAD: x509: certificate signed by unknown authority") },
			want: []string{"spapi-endpoint na fail"}, fix: "sellingpartnerapi-na.amazon.com"},
		{name: "plain http loopback endpoint", break_: func(f *Facts) {
			f.Endpoints[0] = EndpointFacts{Region: "na", URL: "http://127.0.0.1:1", Plain: true, Status: 404}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := goodFacts()
			tc.break_(&f)
			rep := Check(testConfig(t), f)
			var got []string
			var first *Item
			for i, it := range rep.Items {
				if it.Status == OK {
					continue
				}
				got = append(got, it.ID+" "+it.Subject+" "+string(it.Status))
				if first == nil {
					first = &rep.Items[i]
				}
				if it.Fix == "" {
					t.Errorf("%s has no fix", it.ID)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("non-ok checks = %q, want %q\n%s", got, tc.want, dump(rep))
			}
			if first != nil && !strings.Contains(first.Fix, tc.fix) {
				t.Errorf("fix of %s = %q, want it to contain %q", first.ID, first.Fix, tc.fix)
			}
			wantFailed := 0
			for _, w := range tc.want {
				if strings.HasSuffix(w, " fail") {
					wantFailed++
				}
			}
			if rep.Failed != wantFailed || rep.OK() != (wantFailed == 0) {
				t.Errorf("Failed = %d, OK = %v; want %d failures", rep.Failed, rep.OK(), wantFailed)
			}
		})
	}
}

// TestDecryptionFailureNamesTheKey: when KMS refuses to decrypt the secret (AWS answers
// GetSecretValue with DecryptionFailure while the key is disabled), secret-record's fix names the
// key, not a new copy of the secret. moto ignores key states, so this is where it is proven.
func TestDecryptionFailureNamesTheKey(t *testing.T) {
	t.Parallel()
	refused := func(f *Facts, err error) {
		f.Apps[0].ValueErr = fmt.Errorf("reading AWSCURRENT of secret lwa/main-app: %w", err)
		f.Apps[0].TokenTried, f.Apps[0].RecordClientID, f.Apps[0].CurrentVersion = false, "", ""
	}
	decryption := &smtypes.DecryptionFailure{Message: aws.String("Secrets Manager can't decrypt the protected secret text using the provided KMS key.")}
	tests := []struct {
		name   string
		break_ func(f *Facts)
		want   string // in secret-record's fix
		// every failing check: with the key disabled, each one's fix is the key's
		failing []string
	}{
		{"key disabled", func(f *Facts) { f.Key.State = "Disabled"; refused(f, decryption) },
			"aws kms enable-key --key-id " + tKeyARN,
			[]string{"kms-key", "queue-key-policy", "queue-key-policy", "secret-record"}},
		{"key pending deletion", func(f *Facts) { f.Key.State = "PendingDeletion"; refused(f, decryption) },
			"aws kms cancel-key-deletion --key-id " + tKeyARN + ", then aws kms enable-key --key-id " + tKeyARN,
			[]string{"kms-key", "queue-key-policy", "queue-key-policy", "secret-record"}},
		{"the refusal as a generic API error", func(f *Facts) {
			f.Key.State = "Disabled"
			refused(f, &smithy.GenericAPIError{Code: "DecryptionFailure", Message: "can't decrypt"})
		}, "aws kms enable-key --key-id " + tKeyARN, []string{"kms-key", "queue-key-policy", "queue-key-policy", "secret-record"}},
		{"key enabled: a missing grant or a key disabled since", func(f *Facts) { refused(f, decryption) },
			"kms:Decrypt", []string{"secret-record"}},
		{"the secret's own key, not the configured one", func(f *Facts) {
			f.Apps[0].KMSKeyID = tOtherKey
			f.Apps[0].Key = &KeyFacts{ID: tOtherKey, ARN: tOtherKey, Manager: "CUSTOMER", State: "Disabled"}
			refused(f, decryption)
		}, "aws kms enable-key --key-id " + tOtherKey, []string{"secret-key", "secret-record"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := goodFacts()
			tc.break_(&f)
			rep := Check(testConfig(t), f)
			var failing []string
			for _, it := range rep.Items {
				if it.Status != Fail {
					continue
				}
				failing = append(failing, it.ID)
				if it.ID == "secret-record" {
					if !strings.Contains(it.Fix, tc.want) {
						t.Errorf("secret-record fix = %q, want it to contain %q", it.Fix, tc.want)
					}
					if strings.Contains(it.Fix, "seed") {
						t.Errorf("secret-record fix = %q: storing the secret again does not help when KMS refuses to decrypt it", it.Fix)
					}
				}
			}
			if !slices.Equal(failing, tc.failing) {
				t.Fatalf("failing checks %q, want %q\n%s", failing, tc.failing, dump(rep))
			}
		})
	}
}

// The healthy set-up runs every check, so a check that silently stopped running shows here.
func TestHealthySetUpRunsEveryCheck(t *testing.T) {
	t.Parallel()
	rep := Check(testConfig(t), goodFacts())
	ids := map[string]bool{}
	for _, it := range rep.Items {
		ids[it.ID] = true
	}
	for _, id := range []string{"kms-key", "queue-exists", "queue-standard", "queue-sse", "queue-key-policy", "queue-policy",
		"queue-retention", "queue-dlq", "queue-max-receive", "dlq-sse", "dlq-retention", "secret-exists", "secret-key",
		"secret-record", "secret-pending", "secret-tags", "lwa-token", "rotation", "spapi-endpoint", "secrets-listing"} {
		if !ids[id] {
			t.Errorf("check %s did not run", id)
		}
	}
	if !rep.OK() || rep.Warned != 0 {
		t.Errorf("healthy set-up: %d failed, %d warned\n%s", rep.Failed, rep.Warned, dump(rep))
	}
}

// The rotation check reports the daemon's decision in words, with its literal next action.
func TestRotationCheckReportsTheDecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		state  vault.RotationState
		status Status
		want   string
	}{
		{"idle", vault.RotationState{}, OK,
			"phase idle (renewal-scheduled): waiting for the renewal time (the current secret's expiry minus renewBefore); the daemon acts next at 2026-08-02T12:00:00Z"},
		// Await deadline 12:30; the watchdog's retry 30 s plus the jitter of "r1/1" (0.0527037…) times 30 s later.
		{"requested", vault.RotationState{RequestedAt: tNow.Add(-30 * time.Minute), LastCallAt: tNow.Add(-30 * time.Minute), RotationID: "r1"}, OK,
			"phase requested (awaiting-secret): a rotate call was accepted: waiting for the new secret on SQS; the watchdog asks again if none arrives by the await deadline; the daemon acts next at 2026-06-01T12:30:31.581112375Z"},
		{"operator request", vault.RotationState{Request: vault.RotationRequest{At: tNow.Add(-5 * time.Minute)}}, OK,
			"phase due (operator-request): an operator asked for a rotation (lwa-rotator rotate); the daemon acts next at 2026-06-01T12:00:00Z"},
		{"backing off after a lost secret", vault.RotationState{LastCallAt: tNow.Add(-2 * time.Hour), Attempts: 1, NextAttemptAt: tNow.Add(10 * time.Minute), RotationID: "r1"}, Warn,
			"phase backing_off (secret-owed): the latest rotate call's new secret never arrived: asking again while the old secret still works; the daemon acts next at 2026-06-01T12:10:00Z; the new secret of the latest rotate call (2026-06-01T10:00:00Z) never arrived"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := goodFacts()
			f.Apps[0].Rotation.Snapshot.State = tc.state
			rep := Check(testConfig(t), f)
			i := slices.IndexFunc(rep.Items, func(it Item) bool { return it.ID == "rotation" })
			if i < 0 {
				t.Fatal("no rotation check")
			}
			if it := rep.Items[i]; it.Status != tc.status || !strings.HasPrefix(it.Summary, tc.want) {
				t.Errorf("rotation: %s %q\nwant %s %q", it.Status, it.Summary, tc.status, tc.want)
			}
		})
	}
}

func dump(r Report) string {
	var b bytes.Buffer
	_ = WriteText(&b, r)
	return b.String()
}

func TestWriteText(t *testing.T) {
	t.Parallel()
	f := goodFacts()
	delete(f.Queues[0].Attrs, "Policy")
	var b bytes.Buffer
	if err := WriteText(&b, Check(testConfig(t), f)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"✗ queue-policy", "✓ queue-standard", "fix: set the queue's Policy attribute", `"Resource": "` + arnOf(tExpiry) + `"`, "1 check(s) failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	f := goodFacts()
	f.Queues[0].Attrs["FifoQueue"] = "true"
	f.Queues[0].DLQ.Attrs["FifoQueue"] = "true"
	var b bytes.Buffer
	if err := WriteJSON(&b, Check(testConfig(t), f)); err != nil {
		t.Fatal(err)
	}
	var got struct {
		OK     bool   `json:"ok"`
		Failed int    `json:"failed"`
		Checks []Item `json:"checks"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	if got.OK || got.Failed != 1 {
		t.Errorf("ok = %v, failed = %d; want false, 1", got.OK, got.Failed)
	}
	i := slices.IndexFunc(got.Checks, func(it Item) bool { return it.Status == Fail })
	if i < 0 || got.Checks[i].ID != "queue-standard" || got.Checks[i].Subject != tExpiry || got.Checks[i].Fix == "" {
		t.Errorf("failing item = %+v", got.Checks[i])
	}
}
