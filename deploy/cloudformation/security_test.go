package cloudformation_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spapi-tools/lwa-rotator/config"
)

const (
	amazonAccount   = "437568002678"
	amazonPrincipal = "arn:aws:iam::437568002678:root"
	iamDir          = "../iam"
)

type set map[string]bool

func setOf(xs ...string) set {
	s := set{}
	for _, x := range xs {
		s[x] = true
	}
	return s
}

func (s set) sorted() []string { return slices.Sorted(maps.Keys(s)) }

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// strs reads IAM's "a string or a list".
func strs(v node) []node {
	if l, ok := v.([]node); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []node{v}
}

// placeholderOf maps a CloudFormation value to the deploy/iam placeholder that stands for the
// same thing, so the templates' statements can be compared with the code-tied JSON policies.
// ok is false for a value with no placeholder: such a statement cannot equal the JSON one.
func placeholderOf(v node) (string, bool) {
	if s, ok := v.(string); ok {
		return s, true
	}
	fn, arg, _ := intrinsic(v)
	switch fn {
	case "Fn::GetAtt":
		a, _ := arg.([]node)
		if len(a) == 2 && a[1] == "Arn" {
			p, ok := map[node]string{
				"DaemonRole": "${DaemonRoleArn}", "Key": "${KmsKeyArn}",
				"ExpiryQueue": "${ExpiryQueueArn}", "NewSecretQueue": "${NewSecretQueueArn}",
				"ExpiryDeadLetterQueue":    "${ExpiryDeadLetterQueueArn}",
				"NewSecretDeadLetterQueue": "${NewSecretDeadLetterQueueArn}",
			}[a[0]]
			return p, ok
		}
	case "Ref":
		if s, _ := arg.(string); regexp.MustCompile(`^App[0-9]+Secret$`).MatchString(s) {
			return "${SecretArn}", true
		}
	case "Fn::Sub":
		s, ok := arg.(string)
		if !ok {
			return "", false
		}
		s = strings.NewReplacer("${AWS::Partition}", "aws", "${AWS::AccountId}", "${AccountId}", "${AWS::Region}", "${Region}").Replace(s)
		return s, !strings.Contains(s, "${AWS::")
	}
	return "", false
}

// canonical is a statement reduced to what IAM evaluates: lists become sorted sets and every
// value its placeholder.
type canonical struct {
	Sid, Effect string
	Principal   map[string][]string
	Action      []string
	Resource    []string
	Condition   map[string]map[string][]string
}

func canonicalize(v node) (canonical, error) {
	m, ok := v.(map[string]node)
	if !ok {
		return canonical{}, fmt.Errorf("statement %v is not a mapping", v)
	}
	for k := range m {
		if !setOf("Sid", "Effect", "Principal", "Action", "Resource", "Condition")[k] {
			return canonical{}, fmt.Errorf("statement key %q is not used by this project", k)
		}
	}
	list := func(v node) ([]string, error) {
		s := set{}
		for _, x := range strs(v) {
			p, ok := placeholderOf(x)
			if !ok {
				return nil, fmt.Errorf("value %v has no deploy/iam placeholder", x)
			}
			s[p] = true
		}
		return s.sorted(), nil
	}
	var c canonical
	var err error
	c.Sid, _ = m["Sid"].(string)
	c.Effect, _ = m["Effect"].(string)
	if c.Action, err = list(m["Action"]); err != nil {
		return c, err
	}
	if c.Resource, err = list(m["Resource"]); err != nil {
		return c, err
	}
	switch p := m["Principal"].(type) {
	case nil:
	case string:
		c.Principal = map[string][]string{"*": {p}}
	case map[string]node:
		c.Principal = map[string][]string{}
		for k, v := range p {
			if c.Principal[k], err = list(v); err != nil {
				return c, err
			}
		}
	}
	if cond, ok := m["Condition"].(map[string]node); ok {
		c.Condition = map[string]map[string][]string{}
		for op, kv := range cond {
			c.Condition[op] = map[string][]string{}
			for k, v := range kv.(map[string]node) {
				if c.Condition[op][k], err = list(v); err != nil {
					return c, err
				}
			}
		}
	}
	return c, nil
}

func canonicalStatements(t *testing.T, where string, doc node) map[string]canonical {
	t.Helper()
	out := map[string]canonical{}
	for _, s := range strs(get(doc, "Statement")) {
		c, err := canonicalize(s)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			continue
		}
		if _, dup := out[c.Sid]; dup {
			t.Errorf("%s: duplicate Sid %q", where, c.Sid)
		}
		out[c.Sid] = c
	}
	return out
}

// loadIAM reads a deploy/iam policy as the same generic value the templates parse into.
func loadIAM(t *testing.T, name string, replace ...string) node {
	t.Helper()
	b := mustRead(t, filepath.Join(iamDir, name))
	b = []byte(strings.NewReplacer(replace...).Replace(string(b)))
	var v node
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return jsonToNode(v)
}

func jsonToNode(v any) node {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]node{}
		for k, c := range x {
			m[k] = jsonToNode(c)
		}
		return m
	case []any:
		l := make([]node, len(x))
		for i, c := range x {
			l[i] = jsonToNode(c)
		}
		return l
	}
	return v
}

func assertSameStatements(t *testing.T, what string, got, want map[string]canonical) {
	t.Helper()
	for sid, w := range want {
		g, ok := got[sid]
		if !ok {
			t.Errorf("%s: statement %s is missing", what, sid)
			continue
		}
		if gj, wj := mustJSON(g), mustJSON(w); gj != wj {
			t.Errorf("%s: statement %s differs from deploy/iam:\n got  %s\n want %s", what, sid, gj, wj)
		}
	}
	for sid := range got {
		if _, ok := want[sid]; !ok {
			t.Errorf("%s: statement %s is not in deploy/iam", what, sid)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func actionSet(statements map[string]canonical) set {
	s := set{}
	for _, c := range statements {
		for _, a := range c.Action {
			s[a] = true
		}
	}
	return s
}

// notInStack are daemon-policy.json statements for features the stack's generated configuration
// does not use, so its role goes without them (least privilege): the stack configures no webhook,
// whose signing key SecretsManagerReadWebhookKeys reads.
var notInStack = map[string]bool{"SecretsManagerReadWebhookKeys": true}

// TestDaemonRoleEqualsCodeTiedPolicy: the role's permissions are deploy/iam/daemon-policy.json,
// which deploy/iam's test ties to the API calls the code makes. Any drift fails here.
func TestDaemonRoleEqualsCodeTiedPolicy(t *testing.T) {
	t.Parallel()
	want := canonicalStatements(t, "daemon-policy.json", loadIAM(t, "daemon-policy.json"))
	for sid := range notInStack {
		if _, ok := want[sid]; !ok {
			t.Errorf("notInStack names %s, which daemon-policy.json no longer has", sid)
		}
		delete(want, sid)
	}
	wantActions := actionSet(want)
	if len(wantActions) < 5 {
		t.Fatalf("daemon-policy.json grants only %v; the parse is wrong", wantActions.sorted())
	}
	for name, e := range expandAll(t, baseFile, baseScenarios) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var docs []node
			for rname, r := range e.resources() {
				m := r.(map[string]node)
				switch m["Type"] {
				case "AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy":
					if fmt.Sprint(get(m, "Properties", "RoleName")) == fmt.Sprint(map[string]node{"Ref": "DaemonRole"}) {
						docs = append(docs, get(m, "Properties", "PolicyDocument"))
					} else {
						t.Errorf("%s: a policy not attached to DaemonRole; the base stack needs none", rname)
					}
				case "AWS::IAM::Role":
					if rname != "DaemonRole" {
						t.Errorf("%s: a second role in the base stack", rname)
					}
					for _, k := range []string{"Policies", "ManagedPolicyArns", "PermissionsBoundary"} {
						if _, has := props(m)[k]; has {
							t.Errorf("DaemonRole has %s; its permissions belong in DaemonPolicy alone", k)
						}
					}
				}
			}
			if len(docs) != 1 {
				t.Fatalf("found %d policies for DaemonRole, want 1", len(docs))
			}
			got := canonicalStatements(t, "DaemonPolicy", docs[0])
			if missing, extra := diff(wantActions, actionSet(got)); len(missing)+len(extra) > 0 {
				t.Errorf("role actions differ from daemon-policy.json: missing %v, extra %v", missing, extra)
			}
			assertSameStatements(t, "DaemonPolicy", got, want)

			// Each secret statement lists exactly this scenario's secrets.
			var secrets []string
			for rname, r := range e.resources() {
				if r.(map[string]node)["Type"] == "AWS::SecretsManager::Secret" {
					secrets = append(secrets, rname)
				}
			}
			slices.Sort(secrets)
			for _, s := range strs(get(docs[0], "Statement")) {
				if !strings.HasPrefix(fmt.Sprint(get(s, "Sid")), "SecretsManager") || get(s, "Sid") == listStatementSid {
					continue
				}
				var named []string
				for _, r := range strs(get(s, "Resource")) {
					named = append(named, fmt.Sprint(get(r, "Ref")))
				}
				slices.Sort(named)
				if !slices.Equal(named, secrets) {
					t.Errorf("%v: Resource names %v, want the secrets %v", get(s, "Sid"), named, secrets)
				}
			}
		})
	}
}

func diff(want, got set) (missing, extra []string) {
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}

// TestKeyAndQueuePoliciesEqualCodeTiedPolicies: the key policy is kms-key-policy.json and each
// notification queue's policy is queue-policy.json for that queue, statement for statement.
func TestKeyAndQueuePoliciesEqualCodeTiedPolicies(t *testing.T) {
	t.Parallel()
	wantKey := canonicalStatements(t, "kms-key-policy.json", loadIAM(t, "kms-key-policy.json"))
	for name, e := range expandAll(t, baseFile, baseScenarios) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key := e.resource(t, "Key")
			assertSameStatements(t, "Key policy", canonicalStatements(t, "KeyPolicy", get(key, "Properties", "KeyPolicy")), wantKey)
			if get(key, "Properties", "EnableKeyRotation") != true {
				t.Error("the key's rotation is not enabled")
			}
			covered := set{}
			for rname, r := range e.resources() {
				m := r.(map[string]node)
				if m["Type"] != "AWS::SQS::QueuePolicy" {
					continue
				}
				queues := strs(get(m, "Properties", "Queues"))
				notification := ""
				for _, q := range queues {
					if n := fmt.Sprint(get(q, "Ref")); n == "ExpiryQueue" || n == "NewSecretQueue" {
						notification = n
					}
				}
				if notification == "" {
					continue
				}
				if len(queues) != 1 {
					t.Errorf("%s applies to %v; one policy per notification queue keeps each Resource to that queue", rname, queues)
					continue
				}
				covered[notification] = true
				want := canonicalStatements(t, "queue-policy.json", loadIAM(t, "queue-policy.json", "${QueueArn}", "${"+notification+"Arn}"))
				assertSameStatements(t, rname, canonicalStatements(t, rname, get(m, "Properties", "PolicyDocument")), want)
			}
			if !covered["ExpiryQueue"] || !covered["NewSecretQueue"] {
				t.Errorf("queue policies cover %v, want both notification queues", covered.sorted())
			}
		})
	}
}

// walkStrings calls f with the path of every string in v.
func walkStrings(path string, v node, f func(path, s string)) {
	switch x := v.(type) {
	case string:
		f(path, x)
	case map[string]node:
		for k, c := range x {
			walkStrings(path+"."+k, c, f)
		}
	case []node:
		for i, c := range x {
			walkStrings(fmt.Sprintf("%s[%d]", path, i), c, f)
		}
	}
}

var amazonPathRE = regexp.MustCompile(`^\.Resources\.([A-Za-z0-9]+)\.Properties\.(PolicyDocument|KeyPolicy)\.Statement\[(\d+)\]\.Principal\.AWS$`)

// TestAmazonPrincipalOnlyWhereDeliveryNeedsIt: Amazon's account appears in exactly three
// statements (delivery to each notification queue, and encrypting into them with the key), each
// granting exactly what delivery needs on exactly that queue or through SQS only.
func TestAmazonPrincipalOnlyWhereDeliveryNeedsIt(t *testing.T) {
	t.Parallel()
	for file, scenarios := range map[string][]scenario{baseFile: baseScenarios, ecsFile: ecsScenarios} {
		for name, e := range expandAll(t, file, scenarios) {
			t.Run(file+"/"+name, func(t *testing.T) {
				t.Parallel()
				found := 0
				// Everything CloudFormation acts on; the template's Description is prose.
				acted := map[string]node{}
				for _, k := range []string{"Parameters", "Conditions", "Resources", "Outputs"} {
					acted[k] = e.tpl[k]
				}
				walkStrings("", acted, func(path, s string) {
					if !strings.Contains(s, amazonAccount) {
						return
					}
					found++
					m := amazonPathRE.FindStringSubmatch(path)
					if m == nil || s != amazonPrincipal {
						t.Errorf("%s: Amazon's account at %s; it belongs only in a queue or key policy principal", file, path)
						return
					}
					r := e.resource(t, m[1])
					stmt := get(strs(get(r, "Properties", m[2], "Statement")), must(t, m[3]))
					if len(strs(get(stmt, "Principal", "AWS"))) != 1 || get(stmt, "Effect") != "Allow" {
						t.Errorf("%s: Amazon shares its statement or it is not an Allow", path)
					}
					actions := set{}
					for _, a := range strs(get(stmt, "Action")) {
						actions[fmt.Sprint(a)] = true
					}
					switch r["Type"] {
					case "AWS::SQS::QueuePolicy":
						queues := strs(get(r, "Properties", "Queues"))
						q := fmt.Sprint(get(queues, 0, "Ref"))
						if len(queues) != 1 || (q != "ExpiryQueue" && q != "NewSecretQueue") {
							t.Errorf("%s: Amazon may deliver to %v; only the notification queues take deliveries", path, queues)
						}
						if want := setOf("sqs:SendMessage", "sqs:GetQueueAttributes"); fmt.Sprint(actions.sorted()) != fmt.Sprint(want.sorted()) {
							t.Errorf("%s: Amazon gets %v, want %v", path, actions.sorted(), want.sorted())
						}
						res := strs(get(stmt, "Resource"))
						if len(res) != 1 || fmt.Sprint(res[0]) != fmt.Sprint(map[string]node{"Fn::GetAtt": []node{q, "Arn"}}) {
							t.Errorf("%s: Resource %v, want only %s's ARN", path, res, q)
						}
					case "AWS::KMS::Key":
						if want := setOf("kms:GenerateDataKey", "kms:Decrypt"); fmt.Sprint(actions.sorted()) != fmt.Sprint(want.sorted()) {
							t.Errorf("%s: Amazon gets %v, want %v", path, actions.sorted(), want.sorted())
						}
						via := get(stmt, "Condition", "StringEquals", "kms:ViaService")
						if fmt.Sprint(via) != fmt.Sprint(map[string]node{"Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"}) {
							t.Errorf("%s: kms:ViaService %v, want SQS in this region only", path, via)
						}
					default:
						t.Errorf("%s: Amazon's account in a %v", path, r["Type"])
					}
				})
				want := 0
				if file == baseFile {
					want = 3
				}
				if found != want {
					t.Errorf("Amazon's account appears %d times, want %d", found, want)
				}
			})
		}
	}
}

func must(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// statements finds every policy statement in a template, however it is nested.
func statements(v node, f func(path string, s map[string]node)) {
	var walk func(path string, v node)
	walk = func(path string, v node) {
		switch x := v.(type) {
		case map[string]node:
			if _, a := x["Action"]; a {
				if _, e := x["Effect"]; e {
					f(path, x)
				}
			}
			for k, c := range x {
				walk(path+"."+k, c)
			}
		case []node:
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("", v)
}

// listStatementSid is daemon-policy.json's account-wide statement (ListSecrets and
// BatchGetSecretValue have no resource type).
const listStatementSid = "SecretsManagerListSecrets"

// TestNoBroadGrants: no statement for Secrets Manager names "*" (or any wildcard) as a
// resource but the daemon's listing statement; no wildcard action except the key's root administration; nobody is allowed as "*".
func TestNoBroadGrants(t *testing.T) {
	t.Parallel()
	for file, scenarios := range map[string][]scenario{baseFile: baseScenarios, ecsFile: ecsScenarios, consumerEventsFile: consumerEventsScenarios} {
		for name, e := range expandAll(t, file, scenarios) {
			t.Run(file+"/"+name, func(t *testing.T) {
				t.Parallel()
				n := 0
				statements(e.tpl, func(path string, s map[string]node) {
					n++
					secrets := false
					for _, a := range strs(s["Action"]) {
						as := fmt.Sprint(a)
						secrets = secrets || strings.HasPrefix(as, "secretsmanager:")
						if strings.Contains(as, "*") && !(as == "kms:*" && s["Sid"] == "EnableRootAccountAdministration" && strings.Contains(path, ".KeyPolicy.")) {
							t.Errorf("%s: wildcard action %s", path, as)
						}
					}
					if s["Effect"] == "Allow" && s["Principal"] == "*" {
						t.Errorf("%s: allows everyone", path)
					}
					if !secrets {
						return
					}
					if s["Sid"] == listStatementSid && strings.Contains(path, "DaemonPolicy") {
						// The one exception: two account-wide reads without a resource type.
						acts := strs(s["Action"])
						if fmt.Sprint(acts) != "[secretsmanager:BatchGetSecretValue secretsmanager:ListSecrets]" || fmt.Sprint(strs(s["Resource"])) != "[*]" || s["Condition"] != nil {
							t.Errorf("%s: %v on %v; want exactly BatchGetSecretValue and ListSecrets on \"*\"", path, acts, s["Resource"])
						}
						return
					}
					for _, r := range strs(s["Resource"]) {
						str, isString := r.(string)
						ref := fmt.Sprint(get(r, "Ref"))
						if (isString && strings.Contains(str, "*")) || !regexp.MustCompile(`^App[0-9]+Secret$`).MatchString(ref) {
							t.Errorf("%s: Secrets Manager resource %v; only the stack's own secrets (Ref AppNSecret) belong here", path, r)
						}
					}
				})
				if n == 0 {
					t.Error("found no policy statements at all")
				}
			})
		}
	}
}

// fakeValues are what CloudFormation would substitute for the resources, so the rendered text
// (the trust policy, the configuration file) can be checked as the daemon and IAM will read it.
func render(t *testing.T, e *expanded, v node) string {
	t.Helper()
	prefix := e.params["NamePrefix"]
	pseudo := map[string]string{"AWS::AccountId": "111122223333", "AWS::Region": "us-east-1", "AWS::Partition": "aws", "AWS::StackName": "lwa-rotator"}
	resource := func(name string) string {
		switch name {
		case "ExpiryQueue", "NewSecretQueue":
			q := map[string]string{"ExpiryQueue": "expiry", "NewSecretQueue": "new-secret"}[name]
			return "https://sqs.us-east-1.amazonaws.com/111122223333/" + prefix + "-" + q
		case "Key.Arn":
			return "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		}
		if m := regexp.MustCompile(`^App([0-9])Secret$`).FindStringSubmatch(name); m != nil {
			return "arn:aws:secretsmanager:us-east-1:111122223333:secret:" + prefix + "/" + e.params["App"+m[1]+"Name"] + "-AbCdEf"
		}
		t.Fatalf("render: no fake value for %s", name)
		return ""
	}
	lookup := func(name string, vars map[string]string) string {
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := e.params[name]; ok {
			return v
		}
		if v, ok := pseudo[name]; ok {
			return v
		}
		return resource(name)
	}
	var r func(v node) string
	r = func(v node) string {
		if s, ok := v.(string); ok {
			return s
		}
		fn, arg, ok := intrinsic(v)
		if !ok {
			t.Fatalf("render: %v is not a string", v)
		}
		switch fn {
		case "Ref":
			return lookup(fmt.Sprint(arg), nil)
		case "Fn::Join":
			a := arg.([]node)
			var parts []string
			for _, p := range a[1].([]node) {
				parts = append(parts, r(p))
			}
			return strings.Join(parts, a[0].(string))
		case "Fn::Sub":
			tmpl, vars := arg, map[string]string{}
			if a, ok := arg.([]node); ok {
				tmpl = a[0]
				for k, v := range a[1].(map[string]node) {
					vars[k] = r(v)
				}
			}
			return subVarRE.ReplaceAllStringFunc(tmpl.(string), func(m string) string {
				name := m[2 : len(m)-1]
				if strings.HasPrefix(name, "!") {
					return "${" + name[1:] + "}"
				}
				return lookup(name, vars)
			})
		}
		t.Fatalf("render: %s is not supported", fn)
		return ""
	}
	return r(v)
}

// TestTrustPolicy: the trust policy is a JSON string (its IRSA keys are computed), so IAM would
// be the first to parse it; parse it here for every scenario and check who may assume the role.
func TestTrustPolicy(t *testing.T) {
	t.Parallel()
	for name, e := range expandAll(t, baseFile, baseScenarios) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			text := render(t, e, get(e.resource(t, "DaemonRole"), "Properties", "AssumeRolePolicyDocument"))
			var doc struct {
				Version   string
				Statement []struct {
					Sid, Effect string
					Principal   map[string]string
					Action      any
					Condition   map[string]map[string]string
				}
			}
			if err := json.Unmarshal([]byte(text), &doc); err != nil {
				t.Fatalf("trust policy is not JSON: %v\n%s", err, text)
			}
			if doc.Version != "2012-10-17" {
				t.Errorf("Version %q", doc.Version)
			}
			got := map[string]string{}
			for _, s := range doc.Statement {
				if s.Effect != "Allow" || len(s.Principal) != 1 {
					t.Errorf("%s: Effect %s, principal %v", s.Sid, s.Effect, s.Principal)
				}
				for k, v := range s.Principal {
					got[k+" "+v] = mustJSON(s.Condition)
				}
			}
			want := map[string]string{
				"Service ecs-tasks.amazonaws.com": `{"ArnLike":{"aws:SourceArn":"arn:aws:ecs:us-east-1:111122223333:*"},"StringEquals":{"aws:SourceAccount":"111122223333"}}`,
			}
			if c := e.params["EksPodIdentityClusterArn"]; c != "" {
				want["Service pods.eks.amazonaws.com"] = `{"ArnEquals":{"aws:SourceArn":"` + c + `"},"StringEquals":{"aws:SourceAccount":"111122223333"}}`
			}
			if iss := e.params["EksOidcIssuer"]; iss != "" {
				sa := "system:serviceaccount:" + e.params["KubernetesNamespace"] + ":" + e.params["KubernetesServiceAccount"]
				want["Federated arn:aws:iam::111122223333:oidc-provider/"+iss] = `{"StringEquals":{"` + iss + `:aud":"sts.amazonaws.com","` + iss + `:sub":"` + sa + `"}}`
			}
			if mustJSON(got) != mustJSON(want) {
				t.Errorf("trust:\n got  %v\n want %v", got, want)
			}
		})
	}
}

// TestConfigParameterIsAValidConfiguration: the file the stack writes is loaded by the daemon's
// own config package, with every application of the scenario and nothing else.
func TestConfigParameterIsAValidConfiguration(t *testing.T) {
	t.Parallel()
	for name, e := range expandAll(t, baseFile, baseScenarios) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			text := render(t, e, get(e.resource(t, "ConfigParameter"), "Properties", "Value"))
			if len(text) > 4096 {
				t.Errorf("configuration is %d bytes; a Standard SSM parameter holds 4096", len(text))
			}
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path, func(string) string { return "" })
			if err != nil {
				t.Fatalf("the daemon refuses the generated configuration: %v\n%s", err, text)
			}
			var want []config.Application
			for i := 1; i <= 3; i++ {
				p := func(k string) string { return e.params[fmt.Sprintf("App%d%s", i, k)] }
				if p("Name") == "" {
					continue
				}
				want = append(want, config.Application{
					Name: p("Name"), ClientID: p("ClientId"), Region: p("Region"), ApplicationID: p("ApplicationId"),
					SecretID: render(t, e, map[string]node{"Ref": fmt.Sprintf("App%dSecret", i)}),
				})
			}
			if mustJSON(cfg.Applications) != mustJSON(want) {
				t.Errorf("applications:\n got  %+v\n want %+v", cfg.Applications, want)
			}
			if !strings.HasSuffix(cfg.Queues.Expiry, "-expiry") || !strings.HasSuffix(cfg.Queues.NewSecret, "-new-secret") {
				t.Errorf("queues %+v", cfg.Queues)
			}
		})
	}
}
