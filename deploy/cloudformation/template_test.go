package cloudformation_test

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	baseFile = "lwa-rotator.yaml"
	ecsFile  = "lwa-rotator-ecs.yaml"
	// consumerEventsFile is the EventBridge rule that tells consumers of a promotion.
	consumerEventsFile = "lwa-rotator-consumer-events.yaml"
)

// node is a template value as JSON sees it: map[string]any, []any, string, float64, bool or nil.
// Short-form intrinsics (!Ref, !Sub, …) are turned into their long form ({"Ref": …}).
type node = any

// shortForms maps a YAML tag to the long-form key CloudFormation reads.
var shortForms = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition", "!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub",
	"!Join": "Fn::Join", "!Select": "Fn::Select", "!Split": "Fn::Split", "!If": "Fn::If",
	"!Equals": "Fn::Equals", "!Not": "Fn::Not", "!And": "Fn::And", "!Or": "Fn::Or",
	"!ImportValue": "Fn::ImportValue", "!Base64": "Fn::Base64", "!GetAZs": "Fn::GetAZs",
	"!FindInMap": "Fn::FindInMap", "!Cidr": "Fn::Cidr",
}

// intrinsicKeys are the keys that make a one-key map an intrinsic function.
var intrinsicKeys = map[string]bool{"Ref": true, "Condition": true}

func init() {
	for _, v := range shortForms {
		intrinsicKeys[v] = true
	}
}

// parseTemplate reads YAML the way CloudFormation does: short-form tags become long-form
// intrinsics, and an unknown tag (a typo such as !Subb) is an error, not a string.
func parseTemplate(src []byte) (map[string]node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("not a single YAML document")
	}
	v, err := convert(doc.Content[0])
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]node)
	if !ok {
		return nil, errors.New("the template is not a mapping")
	}
	return m, nil
}

func convert(n *yaml.Node) (node, error) {
	if n.Kind == yaml.AliasNode {
		return nil, fmt.Errorf("line %d: YAML aliases are not supported by CloudFormation", n.Line)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		key, ok := shortForms[n.Tag]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		var arg node
		switch n.Kind {
		case yaml.ScalarNode:
			arg = n.Value
			if key == "Fn::GetAtt" {
				res, attr, found := strings.Cut(n.Value, ".")
				if !found {
					return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, n.Value)
				}
				arg = []node{res, attr}
			}
		default:
			plain := *n
			plain.Tag = ""
			var err error
			if arg, err = convert(&plain); err != nil {
				return nil, err
			}
		}
		return map[string]node{key: arg}, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]node, len(n.Content)/2)
		for i := 0; i < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
			}
			v, err := convert(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]node, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convert(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		switch x := v.(type) {
		case int:
			return float64(x), nil
		case nil, string, bool, float64:
			return x, nil
		default:
			return nil, fmt.Errorf("line %d: scalar of type %T", n.Line, v)
		}
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

func loadTemplate(t *testing.T, name string) map[string]node {
	t.Helper()
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := parseTemplate(src)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return tpl
}

// intrinsic returns the function name and argument when v is a one-key intrinsic map.
func intrinsic(v node) (string, node, bool) {
	m, ok := v.(map[string]node)
	if !ok || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if intrinsicKeys[k] {
			return k, a, true
		}
	}
	return "", nil, false
}

func section(tpl map[string]node, name string) map[string]node {
	m, _ := tpl[name].(map[string]node)
	return m
}

// scenario is one set of parameter values the templates are checked with, so that every branch
// of every Fn::If is validated in at least one of them.
type scenario struct {
	name   string
	params map[string]string
}

var baseScenarios = []scenario{
	{"one application, ECS only", map[string]string{
		"App1Name": "main-app", "App1ClientId": "amzn1.application-oa2-client.aaa111",
	}},
	{"three applications, IRSA and Pod Identity", map[string]string{
		"NamePrefix": "lwa-prod",
		"App1Name":   "main-app", "App1ClientId": "amzn1.application-oa2-client.aaa111", "App1ApplicationId": "amzn1.sp.solution.1111-aaaa",
		"App2Name": "eu_app", "App2ClientId": "amzn1.application-oa2-client.bbb222", "App2Region": "eu",
		"App3Name": "fe-app", "App3ClientId": "amzn1.application-oa2-client.ccc333", "App3Region": "fe", "App3ApplicationId": "amzn1.sp.solution.3333-cccc",
		"MaxReceiveCount":          "12",
		"EksOidcIssuer":            "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
		"EksPodIdentityClusterArn": "arn:aws:eks:us-east-1:111122223333:cluster/prod",
		"KubernetesNamespace":      "rotator", "KubernetesServiceAccount": "lwa",
	}},
}

var consumerEventsScenarios = []scenario{
	{"secret by name", map[string]string{"SecretId": "lwa-rotator/main-app"}},
	{"secret by ARN, own topic", map[string]string{
		"SecretId": "arn:aws:secretsmanager:us-east-1:111122223333:secret:lwa-rotator/main-app-a1B2c3", "TopicName": "main-app-promoted",
	}},
}

var ecsScenarios = []scenario{
	{"new cluster, no metrics ingress", map[string]string{
		"Image": "ghcr.io/spapi-tools/lwa-rotator@sha256:0000000000000000000000000000000000000000000000000000000000000000",
		"VpcId": "vpc-0123456789abcdef0", "Subnets": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
	}},
	{"existing cluster, metrics from a CIDR and a security group", map[string]string{
		"Image": "ghcr.io/spapi-tools/lwa-rotator:v1.0.0", "ClusterName": "shared",
		"VpcId": "vpc-0123456789abcdef0", "Subnets": "subnet-0123456789abcdef0",
		"MetricsSourceCidr": "10.0.0.0/16", "MetricsSourceSecurityGroup": "sg-0123456789abcdef0",
		"AssignPublicIp": "ENABLED", "LogLevel": "debug", "MetricsPort": "9100", "CloudMapNamespaceId": "ns-abcdef0123456789",
		"DesiredCount": "3",
	}},
}

// resolveParams checks the scenario's values against the parameters' constraints (as
// CloudFormation would) and fills in defaults.
func resolveParams(tpl map[string]node, sc scenario) (map[string]string, error) {
	params := section(tpl, "Parameters")
	for k := range sc.params {
		if _, ok := params[k]; !ok {
			return nil, fmt.Errorf("scenario sets unknown parameter %s", k)
		}
	}
	out := map[string]string{}
	var problems []string
	for name, raw := range params {
		p, _ := raw.(map[string]node)
		v, set := sc.params[name]
		if !set {
			d, ok := p["Default"].(string)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: required and not set", name))
				continue
			}
			v = d
		}
		if err := checkParam(p, v); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: %v", name, v, err))
		}
		out[name] = v
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

func checkParam(p map[string]node, v string) error {
	values := []string{v}
	if typ, _ := p["Type"].(string); strings.HasPrefix(typ, "List<") || typ == "CommaDelimitedList" {
		values = strings.Split(v, ",")
	}
	for _, v := range values {
		if pat, ok := p["AllowedPattern"].(string); ok {
			re, err := regexp.Compile("^(?:" + pat + ")$")
			if err != nil {
				return fmt.Errorf("AllowedPattern does not compile: %w", err)
			}
			if !re.MatchString(v) {
				return fmt.Errorf("does not match AllowedPattern %s", pat)
			}
		}
		if allowed, ok := p["AllowedValues"].([]node); ok && !slices.Contains(allowed, node(v)) {
			return fmt.Errorf("not in AllowedValues %v", allowed)
		}
		if p["Type"] == "Number" {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return errors.New("not a number")
			}
			for key, bad := range map[string]func(float64) bool{
				"MinValue": func(b float64) bool { return n < b },
				"MaxValue": func(b float64) bool { return n > b },
			} {
				if s, ok := p[key].(string); ok {
					b, err := strconv.ParseFloat(s, 64)
					if err != nil || bad(b) {
						return fmt.Errorf("outside %s %s", key, s)
					}
				}
			}
		}
	}
	return nil
}

// expanded is a template with its conditions decided for one scenario: resources and outputs
// whose condition is false are gone, every Fn::If is replaced by its chosen branch, and
// AWS::NoValue is removed. What remains are intrinsics that produce values.
type expanded struct {
	params     map[string]string
	conditions map[string]bool
	tpl        map[string]node
}

var noValue = &struct{}{}

func expand(tpl map[string]node, sc scenario) (*expanded, error) {
	params, err := resolveParams(tpl, sc)
	if err != nil {
		return nil, err
	}
	e := &expanded{params: params, conditions: map[string]bool{}}
	defs := section(tpl, "Conditions")
	var eval func(v node, depth int) (bool, error)
	value := func(v node) (string, error) {
		if s, ok := v.(string); ok {
			return s, nil
		}
		if fn, arg, ok := intrinsic(v); ok && fn == "Ref" {
			p, found := params[fmt.Sprint(arg)]
			if !found {
				return "", fmt.Errorf("condition refers to %v, which is not a parameter", arg)
			}
			return p, nil
		}
		return "", fmt.Errorf("condition operand %v is neither a string nor a parameter Ref", v)
	}
	eval = func(v node, depth int) (bool, error) {
		if depth > 20 {
			return false, errors.New("conditions nest too deep (a cycle?)")
		}
		fn, arg, ok := intrinsic(v)
		if !ok {
			return false, fmt.Errorf("condition %v is not a condition function", v)
		}
		args, _ := arg.([]node)
		switch fn {
		case "Condition":
			d, found := defs[fmt.Sprint(arg)]
			if !found {
				return false, fmt.Errorf("unknown condition %v", arg)
			}
			return eval(d, depth+1)
		case "Fn::Equals":
			if len(args) != 2 {
				return false, errors.New("Fn::Equals takes two operands")
			}
			a, err := value(args[0])
			if err != nil {
				return false, err
			}
			b, err := value(args[1])
			return a == b, err
		case "Fn::Not":
			if len(args) != 1 {
				return false, errors.New("Fn::Not takes one condition")
			}
			b, err := eval(args[0], depth+1)
			return !b, err
		case "Fn::And", "Fn::Or":
			if len(args) < 2 || len(args) > 10 {
				return false, fmt.Errorf("%s takes 2 to 10 conditions", fn)
			}
			and := fn == "Fn::And"
			res := and
			for _, a := range args {
				b, err := eval(a, depth+1)
				if err != nil {
					return false, err
				}
				if and {
					res = res && b
				} else {
					res = res || b
				}
			}
			return res, nil
		}
		return false, fmt.Errorf("%s is not a condition function", fn)
	}
	// Rules use the same functions on parameters; CloudFormation refuses a parameter set that
	// breaks an assertion whose rule applies.
	for name, raw := range section(tpl, "Rules") {
		r, _ := raw.(map[string]node)
		applies := true
		if c, ok := r["RuleCondition"]; ok {
			if applies, err = eval(c, 0); err != nil {
				return nil, fmt.Errorf("rule %s: %w", name, err)
			}
		}
		for _, a := range strs(r["Assertions"]) {
			ok, err := eval(get(a, "Assert"), 0)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", name, err)
			}
			if applies && !ok {
				return nil, fmt.Errorf("rule %s refuses the parameters: %v", name, get(a, "AssertDescription"))
			}
		}
	}
	for name, d := range defs {
		b, err := eval(d, 0)
		if err != nil {
			return nil, fmt.Errorf("condition %s: %w", name, err)
		}
		e.conditions[name] = b
	}

	var walk func(v node) (node, error)
	walk = func(v node) (node, error) {
		if fn, arg, ok := intrinsic(v); ok {
			switch {
			case fn == "Fn::If":
				args, _ := arg.([]node)
				if len(args) != 3 {
					return nil, errors.New("Fn::If takes [condition, then, else]")
				}
				b, found := e.conditions[fmt.Sprint(args[0])]
				if !found {
					return nil, fmt.Errorf("Fn::If names unknown condition %v", args[0])
				}
				if b {
					return walk(args[1])
				}
				return walk(args[2])
			case fn == "Ref" && arg == "AWS::NoValue":
				return noValue, nil
			}
		}
		switch x := v.(type) {
		case map[string]node:
			out := make(map[string]node, len(x))
			for k, c := range x {
				w, err := walk(c)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", k, err)
				}
				if w != noValue {
					out[k] = w
				}
			}
			return out, nil
		case []node:
			out := make([]node, 0, len(x))
			for i, c := range x {
				w, err := walk(c)
				if err != nil {
					return nil, fmt.Errorf("[%d]: %w", i, err)
				}
				if w != noValue {
					out = append(out, w)
				}
			}
			return out, nil
		}
		return v, nil
	}
	e.tpl = map[string]node{}
	for k, v := range tpl {
		if k != "Resources" && k != "Outputs" {
			e.tpl[k] = v
			continue
		}
		kept := map[string]node{}
		for name, item := range v.(map[string]node) {
			if m, ok := item.(map[string]node); ok {
				if c, has := m["Condition"]; has {
					b, found := e.conditions[fmt.Sprint(c)]
					if !found {
						return nil, fmt.Errorf("%s %s: unknown condition %v", k, name, c)
					}
					if !b {
						continue
					}
				}
			}
			w, err := walk(item)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", k, name, err)
			}
			kept[name] = w
		}
		e.tpl[k] = kept
	}
	return e, nil
}

func (e *expanded) resources() map[string]node { return section(e.tpl, "Resources") }

func (e *expanded) resource(t *testing.T, name string) map[string]node {
	t.Helper()
	r, ok := e.resources()[name].(map[string]node)
	if !ok {
		t.Fatalf("resource %s is missing", name)
	}
	return r
}

func props(r map[string]node) map[string]node {
	p, _ := r["Properties"].(map[string]node)
	return p
}

func expandAll(t *testing.T, file string, scenarios []scenario) map[string]*expanded {
	t.Helper()
	tpl := loadTemplate(t, file)
	out := map[string]*expanded{}
	for _, sc := range scenarios {
		e, err := expand(tpl, sc)
		if err != nil {
			t.Fatalf("%s, scenario %q: %v", file, sc.name, err)
		}
		out[sc.name] = e
	}
	return out
}

// get follows a path of map keys and list indexes.
func get(v node, path ...any) node {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]node)
			v = m[k]
		case int:
			s, _ := v.([]node)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func TestParseTemplateRejectsWhatCloudFormationWould(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, src, want string }{
		{"unknown tag", "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Subb x\n", "unknown tag !Subb"},
		{"duplicate key", "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n  Q:\n    Type: AWS::SQS::Queue\n", "duplicate key"},
		{"GetAtt without attribute", "Outputs:\n  A:\n    Value: !GetAtt Queue\n", "not Resource.Attribute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseTemplate([]byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	tpl, err := parseTemplate([]byte("A: !GetAtt Key.Arn\nB: !Sub [x, {y: !Ref Z}]\nC: 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]node{
		"A": map[string]node{"Fn::GetAtt": []node{"Key", "Arn"}},
		"B": map[string]node{"Fn::Sub": []node{"x", map[string]node{"y": map[string]node{"Ref": "Z"}}}},
		"C": 5.0,
	}
	if fmt.Sprint(tpl) != fmt.Sprint(want) {
		t.Errorf("parsed %v, want %v", tpl, want)
	}
}

// TestRulesRefuseBadApplicationSlots: the parameter sets the daemon would refuse are refused by
// CloudFormation first (the Rules section), and a good one passes.
func TestRulesRefuseBadApplicationSlots(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t, baseFile)
	app1 := map[string]string{"App1Name": "main-app", "App1ClientId": "amzn1.application-oa2-client.aaa111"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range app1 {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		params map[string]string
		want   string // "" means accepted
	}{
		{"second application complete", with(map[string]string{"App2Name": "b", "App2ClientId": "amzn1.application-oa2-client.bbb"}), ""},
		{"second application without client id", with(map[string]string{"App2Name": "b"}), "App2ClientId is required"},
		{"second application named like the first", with(map[string]string{"App2Name": "main-app", "App2ClientId": "amzn1.application-oa2-client.bbb"}), "App2Name must differ"},
		{"third application without client id", with(map[string]string{"App3Name": "c"}), "App3ClientId is required"},
		{"third application named like the second", with(map[string]string{"App2Name": "b", "App2ClientId": "amzn1.application-oa2-client.bbb", "App3Name": "b", "App3ClientId": "amzn1.application-oa2-client.ccc"}), "App3Name must differ"},
		{"application name with a slash", with(map[string]string{"App2Name": "a/b", "App2ClientId": "amzn1.application-oa2-client.bbb"}), "does not match AllowedPattern"},
		{"first application missing", map[string]string{}, "App1Name: required and not set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := expand(tpl, scenario{tc.name, tc.params})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
