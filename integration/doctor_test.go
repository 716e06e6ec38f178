package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/spapi-tools/lwa-rotator/internal/operator/doctor"
	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

type doctorRun struct {
	exit   int
	out    string // stdout and stderr
	report struct {
		OK     bool          `json:"ok"`
		Failed int           `json:"failed"`
		Warned int           `json:"warned"`
		Checks []doctor.Item `json:"checks"`
	}
}

// extraEnv holds, per environment (by config path), one more VAR=value for doctor's process.
var extraEnv sync.Map

// runDoctor runs `lwa-rotator doctor` against env, as an operator would.
func runDoctor(t *testing.T, env *sandbox.Env, args ...string) doctorRun {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"doctor", "--config", env.ConfigPath}, args...)...)
	cmd.Env = append(os.Environ(), env.Environ()...)
	if kv, ok := extraEnv.Load(env.ConfigPath); ok {
		cmd.Env = append(cmd.Env, kv.(string))
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var r doctorRun
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		r.exit = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running lwa-rotator doctor: %v", err)
	}
	r.out = stdout.String() + stderr.String()
	for _, l := range strings.Split(r.out, "\n") {
		recordOutput(l)
	}
	if slices.Contains(args, "--json") {
		if err := json.Unmarshal(stdout.Bytes(), &r.report); err != nil {
			t.Fatalf("doctor --json printed no JSON: %v\n%s", err, r.out)
		}
	}
	return r
}

// failures lists the failing checks as "id subject".
func (r doctorRun) failures() []string {
	var out []string
	for _, it := range r.report.Checks {
		if it.Status == doctor.Fail {
			out = append(out, it.ID+" "+it.Subject)
		}
	}
	slices.Sort(out)
	return out
}

func queueARN(t *testing.T, env *sandbox.Env, url string) string {
	t.Helper()
	out, err := env.AWS.SQS.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes["QueueArn"]
}

// setQueueAttribute changes one attribute. moto 5.2.1 drops a queue's Policy on any
// SetQueueAttributes that does not name it (AWS keeps it), so the current Policy is sent along.
func setQueueAttribute(t *testing.T, env *sandbox.Env, url, name, value string) {
	t.Helper()
	attrs := map[string]string{name: value}
	if name != "Policy" {
		out, err := env.AWS.SQS.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{"Policy"}})
		if err != nil {
			t.Fatal(err)
		}
		if p := out.Attributes["Policy"]; p != "" {
			attrs["Policy"] = p
		}
	}
	if _, err := env.AWS.SQS.SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url),
		Attributes: attrs}); err != nil {
		t.Fatalf("setting %s of %s: %v", name, url, err)
	}
}

// rewriteConfig replaces one line's value in the environment's configuration file.
func rewriteConfig(t *testing.T, env *sandbox.Env, old, new string) {
	t.Helper()
	b, err := os.ReadFile(env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("configuration has no %q", old)
	}
	if err := os.WriteFile(env.ConfigPath, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDoctorPassesOnTheSandboxSetUp: the sandbox's own world is what doctor asks for. Its secret
// has 150 days left, outside renewBefore, so the daemon has nothing owed yet.
func TestDoctorPassesOnTheSandboxSetUp(t *testing.T) {
	t.Parallel()
	env := newEnv(t, sandbox.EnvOptions{SecretLifetimeLeft: 150 * 24 * time.Hour})
	r := runDoctor(t, env, "--json")
	if r.exit != 0 || !r.report.OK || r.report.Failed != 0 || r.report.Warned != 0 {
		t.Fatalf("doctor on the sandbox set-up: exit %d, ok %v, %d failed, %d warned\n%s", r.exit, r.report.OK, r.report.Failed, r.report.Warned, r.out)
	}
	ids := map[string]int{}
	for _, it := range r.report.Checks {
		ids[it.ID]++
	}
	// Two queues with a DLQ each, one application, one region.
	for id, n := range map[string]int{"kms-key": 1, "queue-exists": 2, "queue-standard": 2, "queue-sse": 2, "queue-key-policy": 2,
		"queue-policy": 2, "queue-retention": 2, "queue-dlq": 2, "queue-max-receive": 2, "dlq-sse": 2, "dlq-retention": 2,
		"secret-exists": 1, "secret-key": 1, "secret-record": 1, "secret-pending": 1, "secret-tags": 1, "lwa-token": 1, "rotation": 1, "spapi-endpoint": 1} {
		if ids[id] != n {
			t.Errorf("check %s ran %d times, want %d", id, ids[id], n)
		}
	}
	want := "phase idle (renewal-scheduled): waiting for the renewal time (the current secret's expiry minus renewBefore); the daemon acts next at " +
		env.Applications[0].FirstExpiry.Add(-30*24*time.Hour).UTC().Format(time.RFC3339Nano)
	if i := slices.IndexFunc(r.report.Checks, func(it doctor.Item) bool { return it.ID == "rotation" }); i < 0 || r.report.Checks[i].Summary != want {
		t.Errorf("the rotation check does not report the daemon's decision %q:\n%s", want, r.out)
	}
	text := runDoctor(t, env)
	if text.exit != 0 || !strings.Contains(text.out, "✓ lwa-token") || strings.Contains(text.out, "✗") {
		t.Errorf("text checklist: exit %d\n%s", text.exit, text.out)
	}
	assertNoSecret(t, r.out+text.out, env.FirstSecret)
}

// TestDoctorNamesEachBrokenSetUp breaks one thing at a time and expects doctor to fail on exactly
// that, with the fix, and exit 1.
func TestDoctorNamesEachBrokenSetUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		// break_ damages env and returns the failures doctor must report ("id subject") and a
		// text the first failure's fix must contain.
		break_ func(t *testing.T, env *sandbox.Env) (want []string, fix string)
	}{
		{"FIFO queue", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			fifo, err := env.CreateQueue(ctx, path.Base(env.ExpiryQueue)+"-fifo.fifo")
			if err != nil {
				t.Fatal(err)
			}
			rewriteConfig(t, env, "expiry: "+env.ExpiryQueue, "expiry: "+fifo)
			return []string{"queue-standard " + fifo}, "create a standard queue"
		}},
		{"queue policy without Amazon's statement", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			arn := queueARN(t, env, env.SecretQueue)
			mine := doctor.Statement{Sid: "OwnAccountOnly", Effect: "Allow", Principal: map[string]string{"AWS": "arn:aws:iam::123456789012:root"},
				Action: []string{"sqs:SendMessage"}, Resource: arn}
			setQueueAttribute(t, env, env.SecretQueue, "Policy", doctor.PolicyDocument(mine))
			return []string{"queue-policy " + env.SecretQueue}, doctor.AmazonQueueStatement(arn).JSON()
		}},
		{"key policy without Amazon's principal", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			account := strings.Split(env.KMSKeyARN, ":")[4]
			root := doctor.Statement{Sid: "EnableRootAccountAdministration", Effect: "Allow",
				Principal: map[string]string{"AWS": "arn:aws:iam::" + account + ":root"}, Action: []string{"kms:*"}, Resource: "*"}
			if _, err := env.AWS.KMS.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(env.KMSKeyARN), PolicyName: aws.String("default"),
				Policy: aws.String(doctor.PolicyDocument(root))}); err != nil {
				t.Fatal(err)
			}
			// Both queues use the key, so both lose Amazon's deliveries.
			return []string{"queue-key-policy " + env.ExpiryQueue, "queue-key-policy " + env.SecretQueue}, doctor.AmazonKeyStatement("us-east-1").JSON()
		}},
		{"no dead-letter queue", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			setQueueAttribute(t, env, env.SecretQueue, "RedrivePolicy", "")
			return []string{"queue-dlq " + env.SecretQueue}, "RedrivePolicy"
		}},
		{"secret on the wrong key", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			other, err := env.AWS.KMS.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("not the configured key")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.AWS.SecretsManager.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String(env.SecretID),
				KmsKeyId: other.KeyMetadata.Arn}); err != nil {
				t.Fatal(err)
			}
			return []string{"secret-key " + env.AppName}, "--kms-key-id " + env.KMSKeyARN
		}},
		{"invalid current secret", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			// A secret LWA (the simulator) has never issued, stored as AWSCURRENT.
			b, err := vault.Encode(vault.Record{ClientID: env.ClientID, ClientSecret: unknownSecret, ExpiresAt: time.Now().Add(90 * 24 * time.Hour)}, vault.FormatDefault)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.AWS.SecretsManager.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(env.SecretID),
				SecretString: aws.String(string(b))}); err != nil {
				t.Fatal(err)
			}
			return []string{"lwa-token " + env.AppName}, "Developer Console"
		}},
		// The remaining checks, each broken once.
		{"queue missing", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			rewriteConfig(t, env, "expiry: "+env.ExpiryQueue, "expiry: "+env.ExpiryQueue+"-gone")
			return []string{"queue-exists " + env.ExpiryQueue + "-gone"}, "queues.expiry"
		}},
		{"queue without SSE", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			setQueueAttribute(t, env, env.ExpiryQueue, "KmsMasterKeyId", "")
			setQueueAttribute(t, env, env.ExpiryQueue, "SqsManagedSseEnabled", "false")
			return []string{"queue-sse " + env.ExpiryQueue}, "KmsMasterKeyId=" + env.KMSKeyARN
		}},
		{"queue on the AWS-managed SQS key", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			setQueueAttribute(t, env, env.ExpiryQueue, "KmsMasterKeyId", "alias/aws/sqs")
			return []string{"queue-key-policy " + env.ExpiryQueue}, "customer-managed key"
		}},
		{"queue policy denying Amazon", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			arn := queueARN(t, env, env.ExpiryQueue)
			deny := doctor.Statement{Sid: "NoSends", Effect: "Deny", Principal: map[string]string{"AWS": "*"}, Action: []string{"sqs:SendMessage"}, Resource: arn}
			setQueueAttribute(t, env, env.ExpiryQueue, "Policy", doctor.PolicyDocument(doctor.AmazonQueueStatement(arn), deny))
			return []string{"queue-policy " + env.ExpiryQueue}, "Deny"
		}},
		{"one-day retention", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			setQueueAttribute(t, env, env.ExpiryQueue, "MessageRetentionPeriod", "86400")
			return []string{"queue-retention " + env.ExpiryQueue}, "MessageRetentionPeriod=1209600"
		}},
		{"maxReceiveCount 1", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			dlqARN := queueARN(t, env, env.DLQs[0])
			setQueueAttribute(t, env, env.ExpiryQueue, "RedrivePolicy", `{"deadLetterTargetArn":"`+dlqARN+`","maxReceiveCount":1}`)
			return []string{"queue-max-receive " + env.ExpiryQueue}, "maxReceiveCount to 10"
		}},
		{"unencrypted dead-letter queue", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			setQueueAttribute(t, env, env.DLQs[0], "KmsMasterKeyId", "")
			setQueueAttribute(t, env, env.DLQs[0], "SqsManagedSseEnabled", "false")
			return []string{"dlq-sse " + env.DLQs[0]}, "KmsMasterKeyId"
		}},
		{"configured key disabled", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			// moto 5.2.1 answers DisableKey with a 500 when given the key's ARN; the key id works.
			id := env.KMSKeyARN[strings.LastIndex(env.KMSKeyARN, "/")+1:]
			if _, err := env.AWS.KMS.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)}); err != nil {
				t.Fatal(err)
			}
			// The queues use the same key, so nothing can be delivered to them either.
			want := []string{"kms-key " + env.KMSKeyARN, "queue-key-policy " + env.ExpiryQueue, "queue-key-policy " + env.SecretQueue}
			if realAWS {
				// AWS also refuses to decrypt the secret; moto ignores the key's state.
				want = append(want, "secret-record "+env.AppName)
			}
			return want, "enable-key"
		}},
		{"secret missing", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			rewriteConfig(t, env, "secretId: "+env.SecretID, "secretId: "+env.SecretID+"-gone")
			return []string{"secret-exists " + env.AppName}, "create-secret"
		}},
		{"unreadable record", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			if _, err := env.AWS.SecretsManager.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(env.SecretID),
				SecretString: aws.String(`{"clientId":"` + env.ClientID + `"}`)}); err != nil {
				t.Fatal(err)
			}
			return []string{"secret-record " + env.AppName}, "clientSecret"
		}},
		{"no room for the daemon's tags", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			var tags []smtypes.Tag
			for i := range vault.MaxTags - len(vault.StateTags) + 1 { // one more than leaves room
				tags = append(tags, smtypes.Tag{Key: aws.String(fmt.Sprintf("team-%d", i)), Value: aws.String("x")})
			}
			if _, err := env.AWS.SecretsManager.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(env.SecretID), Tags: tags}); err != nil {
				t.Fatal(err)
			}
			return []string{"secret-tags " + env.AppName}, "remove at least 1 tags"
		}},
		{"SP-API endpoint unreachable", func(t *testing.T, env *sandbox.Env) ([]string, string) {
			// The environment's LWA_ROTATOR_SPAPI_ENDPOINT overrides the file, so override it.
			closed := closedURL(t)
			extraEnv.Store(env.ConfigPath, "LWA_ROTATOR_SPAPI_ENDPOINT="+closed)
			return []string{"spapi-endpoint na"}, closed
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newEnv(t, sandbox.EnvOptions{})
			want, fix := tc.break_(t, env)
			slices.Sort(want)
			r := runDoctor(t, env, "--json")
			if r.exit != 1 || r.report.OK {
				t.Errorf("exit %d, ok %v; want exit 1, ok false", r.exit, r.report.OK)
			}
			if got := r.failures(); !slices.Equal(got, want) {
				t.Fatalf("failing checks %q, want exactly %q\n%s", got, want, r.out)
			}
			for _, it := range r.report.Checks {
				if it.Status == doctor.Fail && !strings.Contains(it.Fix, fix) {
					t.Errorf("%s %s: fix %q lacks %q", it.ID, it.Subject, it.Fix, fix)
				}
			}
			text := runDoctor(t, env)
			if text.exit != 1 || !strings.Contains(text.out, "✗ "+strings.Fields(want[0])[0]) || !strings.Contains(text.out, "fix: ") {
				t.Errorf("text checklist: exit %d\n%s", text.exit, text.out)
			}
			assertNoSecret(t, r.out+text.out, env.FirstSecret, unknownSecret)
		})
	}
}

// TestDoctorReportsTheDaemonsDecision: the rotation check warns where status calls attention (a
// secret inside renewBefore that no daemon has rotated), and the secret-pending check says what the
// daemon does with a staged version: warnings, so doctor still exits 0.
func TestDoctorReportsTheDaemonsDecision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, sandbox.EnvOptions{}) // 20 days left, and no daemon running
	find := func(r doctorRun, id string) doctor.Item {
		t.Helper()
		i := slices.IndexFunc(r.report.Checks, func(it doctor.Item) bool { return it.ID == id })
		if i < 0 {
			t.Fatalf("no %s check:\n%s", id, r.out)
		}
		return r.report.Checks[i]
	}
	r := runDoctor(t, env, "--json")
	rot := find(r, "rotation")
	if r.exit != 0 || rot.Status != doctor.Warn || !strings.HasPrefix(rot.Summary, "phase due (renewal-due)") ||
		!strings.Contains(rot.Summary, "inside renewBefore (30d)") || !strings.Contains(rot.Fix, "daemon is running") {
		t.Fatalf("a secret inside renewBefore: exit %d, rotation %+v", r.exit, rot)
	}
	// A version staged with no newer expiry than the current secret: the daemon removes its label.
	b, err := vault.Encode(vault.Record{ClientID: env.ClientID, ClientSecret: unknownSecret}, vault.FormatDefault)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.Repeat("ab", 16)
	if _, err := env.AWS.SecretsManager.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(env.SecretID),
		SecretString: aws.String(string(b)), ClientRequestToken: aws.String(token), VersionStages: []string{vault.StagePending}}); err != nil {
		t.Fatal(err)
	}
	r = runDoctor(t, env, "--json")
	pend, rot := find(r, "secret-pending"), find(r, "rotation")
	if r.exit != 0 || pend.Status != doctor.Warn || !strings.Contains(pend.Summary, "(stale-pending)") || !strings.Contains(pend.Fix, "--remove-from-version-id "+token) {
		t.Errorf("a stale AWSPENDING: exit %d, secret-pending %+v", r.exit, pend)
	}
	if !strings.HasPrefix(rot.Summary, "phase pending (stale-pending)") {
		t.Errorf("rotation with a stale AWSPENDING: %+v", rot)
	}
	assertNoSecret(t, r.out, env.FirstSecret, unknownSecret)
}

// closedURL is a loopback URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

var unknownSecret = secret.New("amzn1.oa2-cs.v1." + fmt.Sprintf("%064x", 0xd0c7))
