package iam_test

import (
	"fmt"
	"go/ast"
	"go/token"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// daemonRoot is where the running daemon's dependency graph starts. cmd/lwa-rotator is not the
// root because it also links the sandbox, which creates queues, keys and secrets in moto.
const daemonRoot = "internal/daemon"

// excluded are operations the daemon does not perform, so its policy must not grant them. The
// sandbox, moto helpers and tests use them; the operator creates queues, keys and secrets.
// allowedAt lists the only daemon-graph sites that may still name one.
var excluded = map[string]struct{ allowedAt []string }{
	// vault.Store.Create exists for the sandbox and tests; the daemon never calls it.
	"secretsmanager:CreateSecret": {allowedAt: []string{"vault.SecretsManager", "vault.Store.Create"}},
	"secretsmanager:DeleteSecret": {},
	"kms:CreateKey":               {},
	"kms:ScheduleKeyDeletion":     {},
	"sqs:CreateQueue":             {},
	"sqs:DeleteQueue":             {},
	"sqs:ListQueues":              {},
	"sqs:SetQueueAttributes":      {},
	"sqs:PurgeQueue":              {},
	// Only Amazon (and the simulator standing in for it) sends to the notification queues.
	"sqs:SendMessage": {},
}

// iamAction maps an operation to the IAM action that authorizes it. Each entry was checked against
// the Service Authorization Reference; a new operation fails the test until someone checks it.
var iamAction = map[string]string{
	"sqs:ReceiveMessage":                      "sqs:ReceiveMessage",
	"sqs:DeleteMessage":                       "sqs:DeleteMessage",
	"sqs:ChangeMessageVisibility":             "sqs:ChangeMessageVisibility",
	"sqs:GetQueueAttributes":                  "sqs:GetQueueAttributes",
	"secretsmanager:GetSecretValue":           "secretsmanager:GetSecretValue",
	"secretsmanager:PutSecretValue":           "secretsmanager:PutSecretValue",
	"secretsmanager:UpdateSecretVersionStage": "secretsmanager:UpdateSecretVersionStage",
	"secretsmanager:DescribeSecret":           "secretsmanager:DescribeSecret",
	"secretsmanager:TagResource":              "secretsmanager:TagResource",
	"secretsmanager:UntagResource":            "secretsmanager:UntagResource",
	// Neither has a resource type: they can only be granted on "*" (listStatementSid).
	"secretsmanager:ListSecrets":         "secretsmanager:ListSecrets",
	"secretsmanager:BatchGetSecretValue": "secretsmanager:BatchGetSecretValue",
	"kms:DescribeKey":                    "kms:DescribeKey",
	// Only lwa-rotator doctor calls these two (doctor-policy.json).
	"sqs:GetQueueUrl":  "sqs:GetQueueUrl",
	"kms:GetKeyPolicy": "kms:GetKeyPolicy",
	// Only lwa-rotator seed calls this one (operator-policy.json).
	"secretsmanager:CreateSecret": "secretsmanager:CreateSecret",
}

// viaNeeds are the KMS calls a service makes on the daemon's behalf when its data is encrypted
// with a customer-managed key: these are the only permissions without a call of their own.
var viaNeeds = map[string][]kmsGrant{
	"secretsmanager:GetSecretValue": {{"kms:Decrypt", "secretsmanager.${Region}.amazonaws.com"}},
	// BatchGetSecretValue decrypts every value it returns, as GetSecretValue does.
	"secretsmanager:BatchGetSecretValue": {{"kms:Decrypt", "secretsmanager.${Region}.amazonaws.com"}},
	"secretsmanager:PutSecretValue":      {{"kms:GenerateDataKey", "secretsmanager.${Region}.amazonaws.com"}, {"kms:Decrypt", "secretsmanager.${Region}.amazonaws.com"}},
	"sqs:ReceiveMessage":                 {{"kms:Decrypt", "sqs.${Region}.amazonaws.com"}},
	// CreateSecret with a value encrypts it like PutSecretValue (lwa-rotator seed).
	"secretsmanager:CreateSecret": {{"kms:GenerateDataKey", "secretsmanager.${Region}.amazonaws.com"}, {"kms:Decrypt", "secretsmanager.${Region}.amazonaws.com"}},
}

// statementResources overrides resources for statements scoped more narrowly than their service:
// the dead-letter queues are only read for their depth, never consumed.
var statementResources = map[string]set{
	"SqsWatchDeadLetterQueues": setOf("${ExpiryDeadLetterQueueArn}", "${NewSecretDeadLetterQueueArn}"),
	// The webhooks' signing keys are only read, never rotated or tagged.
	"SecretsManagerReadWebhookKeys": setOf("${WebhookKeySecretArn}"),
	// ListSecrets and BatchGetSecretValue have no resource type; BatchGetSecretValue still needs
	// GetSecretValue on each secret, which SecretsManagerRotateSecrets scopes.
	listStatementSid: setOf("*"),
}

// listStatementSid is the one statement of the daemon policy on "*": the optional account-wide
// reads (an operator may drop it; the daemon then reads secret by secret).
const listStatementSid = "SecretsManagerListSecrets"

// resources are what each service's statements may name.
var resources = map[string]set{
	"sqs":            setOf("${ExpiryQueueArn}", "${NewSecretQueueArn}"),
	"secretsmanager": setOf("${SecretArn}"),
	"kms":            setOf("${KmsKeyArn}"),
}

// checkExcluded returns one problem per excluded operation named outside its allowed sites.
func checkExcluded(refs []sdkRef) []string {
	var problems []string
	seen := set{}
	for _, r := range refs {
		ex, ok := excluded[r.Op]
		if ok && !slices.Contains(ex.allowedAt, r.Site) && !seen[r.Site+" "+r.Op] {
			seen[r.Site+" "+r.Op] = true
			problems = append(problems, fmt.Sprintf("%s names %s, which the daemon must not perform "+
				"(move it to sandbox code, or grant it and drop it from the exclusion list)", r.Site, r.Op))
		}
	}
	return problems
}

// daemonCalls returns the operations the daemon performs, each with the sites naming it.
func daemonCalls(t *testing.T) map[string][]string {
	t.Helper()
	m := loadModule(t)
	graph := m.reachable(daemonRoot)
	for _, p := range []string{"vault", "notifications", "rotator", "internal/daemon"} {
		if !graph[p] {
			t.Errorf("%s is not in the daemon's import graph; has the wiring moved?", p)
		}
	}
	for _, p := range []string{"testsupport/sandbox", "testsupport/moto", "testsupport/awstest", "testsupport/spapisim"} {
		if graph[p] {
			t.Errorf("the daemon imports %s: its AWS calls would run under the daemon's policy", p)
		}
	}
	var refs []sdkRef
	for _, pkg := range slices.Sorted(maps.Keys(graph)) {
		for _, f := range m.pkgs[pkg] {
			r, err := scanFile(shortPkg(pkg), f)
			if err != nil {
				t.Error(err)
			}
			refs = append(refs, r...)
		}
	}
	for _, p := range checkExcluded(refs) {
		t.Error(p)
	}
	calls := map[string][]string{}
	ifaces := set{}
	for _, r := range refs {
		if r.Iface {
			ifaces[r.Site] = true
		}
		if _, ok := excluded[r.Op]; !ok && !slices.Contains(calls[r.Op], r.Site) {
			calls[r.Op] = append(calls[r.Op], r.Site)
		}
	}
	// A scanner that finds nothing would make every later check pass vacuously.
	for _, want := range []string{"vault.SecretsManager", "notifications.SQS", "notifications.QueueAttributes", "vault.KeyDescriber"} {
		if !ifaces[want] {
			t.Errorf("scanner did not find interface %s (found %v)", want, ifaces.sorted())
		}
	}
	return calls
}

// shortPkg turns a package directory into the short name used in sites ("internal/daemon" → "daemon").
func shortPkg(dir string) string { return dir[strings.LastIndex(dir, "/")+1:] }

// TestDaemonPolicyMatchesCalls: no call without a permission, no permission without a call.
func TestDaemonPolicyMatchesCalls(t *testing.T) {
	t.Parallel()
	calls := daemonCalls(t)
	t.Logf("daemon calls: %v", slices.Sorted(maps.Keys(calls)))
	want, wantVia := set{}, map[kmsGrant]bool{}
	for op, sites := range calls {
		a, ok := iamAction[op]
		if !ok {
			t.Errorf("%s (called at %v) has no iamAction entry: look its action up and add it", op, sites)
			continue
		}
		want[a] = true
		for _, g := range viaNeeds[op] {
			wantVia[g] = true
		}
	}
	got, gotVia := set{}, map[kmsGrant]bool{}
	for _, s := range loadPolicy(t, daemonFile).Statement {
		if s.Effect != "Allow" {
			t.Errorf("%s: unexpected %s statement", s.Sid, s.Effect)
			continue
		}
		svc, _, _ := strings.Cut(s.Action[0], ":")
		for _, a := range s.Action {
			if p, _, _ := strings.Cut(a, ":"); p != svc {
				t.Errorf("%s mixes services %s and %s: one service per statement", s.Sid, svc, p)
			}
			if s.viaService() != "" {
				gotVia[kmsGrant{a, s.viaService()}] = true
			} else {
				got[a] = true
			}
		}
		allowed, ok := statementResources[s.Sid]
		if !ok {
			allowed = resources[svc]
		}
		if missing, extra := diff(allowed, setOf(s.Resource...)); len(missing)+len(extra) > 0 {
			t.Errorf("%s: resources lack %v and have extra %v", s.Sid, missing, extra)
		}
	}
	reportCallDiff(t, "", want, got, wantVia, gotVia)
}

// TestTagConditionCoversVaultTags: the tag-key condition must admit every tag the vault writes,
// or SaveChanges fails with AccessDenied in production while passing against moto.
func TestTagConditionCoversVaultTags(t *testing.T) {
	t.Parallel()
	var patterns strs
	for _, s := range loadPolicy(t, daemonFile).Statement {
		if slices.Contains(s.Action, "secretsmanager:TagResource") {
			patterns = s.Condition["ForAllValues:StringLike"]["aws:TagKeys"]
		}
	}
	if len(patterns) == 0 {
		t.Fatal("TagResource is not limited to the daemon's tag keys")
	}
	tags := vaultTagConstants(t)
	for _, tag := range tags {
		if !slices.ContainsFunc(patterns, func(p string) bool { return like(p, tag) }) {
			t.Errorf("vault tag %q is not admitted by %v", tag, patterns)
		}
	}
}

func valueAt(vs *ast.ValueSpec, i int) ast.Expr {
	if i < len(vs.Values) {
		return vs.Values[i]
	}
	return nil
}

// like is IAM's StringLike: * matches any run of characters, ? exactly one.
func like(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if like(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && like(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && like(pattern[1:], s[1:])
}

// vaultTagConstants are the values of vault's Tag* string constants: every tag key it writes.
func vaultTagConstants(t *testing.T) []string {
	t.Helper()
	var tags []string
	for _, f := range loadModule(t).pkgs["vault"] {
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if bl, ok := valueAt(vs, i).(*ast.BasicLit); ok && strings.HasPrefix(name.Name, "Tag") && bl.Kind == token.STRING {
					v, _ := strconv.Unquote(bl.Value)
					tags = append(tags, v)
				}
			}
			return true
		})
	}
	if len(tags) == 0 {
		t.Fatal("found no Tag* constants in vault")
	}
	return tags
}

// reportCallDiff fails for every call the policy does not grant and every grant no call needs.
func reportCallDiff(t *testing.T, who string, want, got set, wantVia, gotVia map[kmsGrant]bool) {
	t.Helper()
	missing, extra := diff(want, got)
	for _, a := range missing {
		t.Errorf("%scall without a permission: %s", who, a)
	}
	for _, a := range extra {
		t.Errorf("%spermission without a call: %s", who, a)
	}
	if !maps.Equal(wantVia, gotVia) {
		t.Errorf("ViaService KMS grants: want %v, policy has %v", wantVia, gotVia)
	}
}

// TestWebhookKeyReadIsGrantedOnTheKeySecret: the webhook reads its signing key (hmacKeySecretId)
// with GetSecretValue; the policy grants exactly that, on the key's secret, in its own statement,
// so the key's secret needs no rotation rights and the LWA secrets' statement is not widened.
func TestWebhookKeyReadIsGrantedOnTheKeySecret(t *testing.T) {
	t.Parallel()
	calls := daemonCalls(t)
	if !slices.Contains(calls["secretsmanager:GetSecretValue"], "webhook.SecretsManager") {
		t.Fatalf("the scanner found no GetSecretValue in the webhook package (sites %v); has the key reading moved?",
			calls["secretsmanager:GetSecretValue"])
	}
	for _, s := range loadPolicy(t, daemonFile).Statement {
		if s.Sid != "SecretsManagerReadWebhookKeys" {
			continue
		}
		if !slices.Equal(s.Action, strs{"secretsmanager:GetSecretValue"}) || !slices.Equal(s.Resource, strs{"${WebhookKeySecretArn}"}) {
			t.Errorf("SecretsManagerReadWebhookKeys grants %v on %v; want only GetSecretValue on ${WebhookKeySecretArn}", s.Action, s.Resource)
		}
		return
	}
	t.Error("daemon-policy.json has no SecretsManagerReadWebhookKeys statement for the webhook's signing key")
}
