package cloudformation_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/awslabs/goformation/v7/schema"
	"github.com/xeipuuv/gojsonschema"
)

// goformation's schema is generated from the CloudFormation resource specification: every
// resource type with additionalProperties false at each level, so a misspelt property fails.
// It types each property as the value CloudFormation ends up with (string, number, …) and knows
// nothing of intrinsic functions, so before validating: Fn::If and AWS::NoValue are decided per
// scenario (expand), and every property whose value may be computed accepts, besides its own
// type, a single intrinsic function. Objects with named properties stay strict.
const intrinsicDef = "LwaRotatorIntrinsic"

var (
	specOnce sync.Once
	specDefs map[string]any
	specErr  error

	compiledMu sync.Mutex
	compiled   = map[string]*gojsonschema.Schema{}
)

func definitions() (map[string]any, error) {
	specOnce.Do(func() {
		var root map[string]any
		if specErr = json.Unmarshal([]byte(schema.CloudformationSchema), &root); specErr != nil {
			return
		}
		defs, _ := root["definitions"].(map[string]any)
		if len(defs) < 1000 {
			specErr = fmt.Errorf("goformation's schema has %d definitions; expected the whole specification", len(defs))
			return
		}
		for k, d := range defs {
			defs[k] = acceptIntrinsics(d)
		}
		var alts []string
		for _, k := range slices.Sorted(maps.Keys(intrinsicKeys)) {
			alts = append(alts, regexp.QuoteMeta(k))
		}
		defs[intrinsicDef] = map[string]any{
			"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": false,
			"patternProperties": map[string]any{"^(" + strings.Join(alts, "|") + ")$": map[string]any{}},
		}
		specDefs = defs
	})
	return specDefs, specErr
}

// acceptIntrinsics rewrites a schema so that every scalar, list or free-form object may also be an
// intrinsic function.
func acceptIntrinsics(s any) any {
	m, ok := s.(map[string]any)
	if !ok {
		return s
	}
	for _, k := range []string{"properties", "patternProperties", "definitions"} {
		if sub, ok := m[k].(map[string]any); ok {
			for name, v := range sub {
				sub[name] = acceptIntrinsics(v)
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if _, ok := m[k].(map[string]any); ok {
			m[k] = acceptIntrinsics(m[k])
		}
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if list, ok := m[k].([]any); ok {
			for i, v := range list {
				list[i] = acceptIntrinsics(v)
			}
		}
	}
	typ, hasType := m["type"]
	if !hasType {
		return m
	}
	_, named := m["properties"]
	_, patterned := m["patternProperties"]
	if typ == "object" && (named || patterned) {
		return m
	}
	return map[string]any{"anyOf": []any{m, map[string]any{"$ref": "#/definitions/" + intrinsicDef}}}
}

// reachable collects the definitions a resource type's schema refers to, so each type compiles
// into a small schema instead of the whole specification.
func reachable(defs map[string]any, name string, seen map[string]any) {
	if _, done := seen[name]; done {
		return
	}
	d, ok := defs[name]
	if !ok {
		return
	}
	seen[name] = d
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				reachable(defs, strings.TrimPrefix(ref, "#/definitions/"), seen)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(d)
}

func resourceSchema(typ string) (*gojsonschema.Schema, error) {
	defs, err := definitions()
	if err != nil {
		return nil, err
	}
	if _, known := defs[typ]; !known || !strings.HasPrefix(typ, "AWS::") {
		return nil, fmt.Errorf("unknown resource type %q (not in the CloudFormation resource specification)", typ)
	}
	compiledMu.Lock()
	defer compiledMu.Unlock()
	if s, ok := compiled[typ]; ok {
		return s, nil
	}
	used := map[string]any{}
	reachable(defs, typ, used)
	reachable(defs, intrinsicDef, used)
	root := map[string]any{"definitions": used, "allOf": []any{map[string]any{"$ref": "#/definitions/" + typ}}}
	s, err := gojsonschema.NewSchema(gojsonschema.NewGoLoader(root))
	if err != nil {
		return nil, fmt.Errorf("compiling the schema of %s: %w", typ, err)
	}
	compiled[typ] = s
	return s, nil
}

var (
	templateSections = setOf("AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules", "Conditions", "Resources", "Outputs")
	outputKeys       = setOf("Description", "Value", "Export", "Condition")
	pseudoParams     = setOf("AWS::AccountId", "AWS::NotificationARNs", "AWS::Partition", "AWS::Region",
		"AWS::StackId", "AWS::StackName", "AWS::URLSuffix")
	// attributes lists Fn::GetAtt attributes (CloudFormation "Return values") of the types these
	// templates read attributes from. A type not listed fails the test until it is added.
	attributes = map[string]set{
		"AWS::IAM::Role":                 setOf("Arn", "RoleId"),
		"AWS::KMS::Key":                  setOf("Arn", "KeyId"),
		"AWS::SQS::Queue":                setOf("Arn", "QueueName", "QueueUrl"),
		"AWS::SSM::Parameter":            setOf("Type", "Value"),
		"AWS::EC2::SecurityGroup":        setOf("GroupId", "VpcId"),
		"AWS::ECS::Service":              setOf("Name", "ServiceArn"),
		"AWS::ECS::Cluster":              setOf("Arn"),
		"AWS::Logs::LogGroup":            setOf("Arn"),
		"AWS::ServiceDiscovery::Service": setOf("Arn", "Id", "Name"),
		"AWS::Events::Rule":              setOf("Arn"),
	}
	subVarRE = regexp.MustCompile(`\$\{([^}]*)\}`)
)

// validate checks one expanded template: its sections, parameters and outputs, every resource
// against the specification, and every reference (Ref, Fn::GetAtt, Fn::Sub variables,
// DependsOn, conditions) against what the template declares.
func validate(e *expanded) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for k := range e.tpl {
		if !templateSections[k] {
			add("unknown template section %q", k)
		}
	}
	if v := e.tpl["AWSTemplateFormatVersion"]; v != "2010-09-09" {
		add("AWSTemplateFormatVersion %v, want 2010-09-09", v)
	}
	if d, _ := e.tpl["Description"].(string); len(d) == 0 || len(d) > 1024 {
		add("Description must be 1 to 1024 characters, is %d", len(d))
	}

	defs, err := definitions()
	if err != nil {
		return []string{err.Error()}
	}
	paramSchema, err := gojsonschema.NewSchema(gojsonschema.NewGoLoader(map[string]any{
		"definitions": map[string]any{"Parameter": defs["Parameter"], intrinsicDef: defs[intrinsicDef]},
		"allOf":       []any{map[string]any{"$ref": "#/definitions/Parameter"}},
	}))
	if err != nil {
		return []string{err.Error()}
	}
	for name, p := range section(e.tpl, "Parameters") {
		for _, msg := range schemaErrors(paramSchema, p) {
			add("parameter %s: %s", name, msg)
		}
	}

	for name, r := range section(e.tpl, "Rules") {
		m, _ := r.(map[string]node)
		for k := range m {
			if k != "RuleCondition" && k != "Assertions" {
				add("rule %s: unknown key %q", name, k)
			}
		}
		for _, a := range strs(m["Assertions"]) {
			am, _ := a.(map[string]node)
			for k := range am {
				if k != "Assert" && k != "AssertDescription" {
					add("rule %s: unknown assertion key %q", name, k)
				}
			}
		}
	}

	resources := e.resources()
	types := map[string]string{}
	for name, r := range resources {
		m, ok := r.(map[string]node)
		if !ok {
			add("resource %s is not a mapping", name)
			continue
		}
		typ, _ := m["Type"].(string)
		types[name] = typ
		s, err := resourceSchema(typ)
		if err != nil {
			add("resource %s: %v", name, err)
			continue
		}
		for _, msg := range schemaErrors(s, m) {
			add("resource %s (%s): %s", name, typ, msg)
		}
	}

	for name, o := range section(e.tpl, "Outputs") {
		m, _ := o.(map[string]node)
		for k := range m {
			if !outputKeys[k] {
				add("output %s: unknown key %q", name, k)
			}
		}
		if _, ok := m["Value"]; !ok {
			add("output %s has no Value", name)
		}
		if ex, ok := m["Export"].(map[string]node); ok && (len(ex) != 1 || ex["Name"] == nil) {
			add("output %s: Export takes exactly Name", name)
		}
	}

	params := section(e.tpl, "Parameters")
	refable := func(n string) bool { _, p := params[n]; _, r := resources[n]; return p || r || pseudoParams[n] }
	getAtt := func(where, res, attr string) {
		typ, ok := types[res]
		switch {
		case !ok:
			add("%s: Fn::GetAtt of %s, which is not a resource (in this scenario)", where, res)
		case attributes[typ] == nil:
			add("%s: Fn::GetAtt on %s, a type whose attributes the test does not list", where, typ)
		case !attributes[typ][attr]:
			add("%s: %s has no attribute %s", where, typ, attr)
		}
	}
	var walk func(where string, v node)
	walk = func(where string, v node) {
		if fn, arg, ok := intrinsic(v); ok {
			switch fn {
			case "Ref":
				if n, _ := arg.(string); !refable(n) {
					add("%s: Ref %v names no parameter, resource (in this scenario) or pseudo parameter", where, arg)
				}
				return
			case "Fn::GetAtt":
				a, _ := arg.([]node)
				if len(a) != 2 {
					add("%s: Fn::GetAtt takes [resource, attribute]", where)
					return
				}
				getAtt(where, fmt.Sprint(a[0]), fmt.Sprint(a[1]))
				return
			case "Fn::Sub":
				str, vars := arg, map[string]node{}
				if a, ok := arg.([]node); ok {
					if len(a) != 2 {
						add("%s: Fn::Sub takes a string or [string, map]", where)
						return
					}
					str = a[0]
					vars, _ = a[1].(map[string]node)
					for k, v := range vars {
						walk(where+".Fn::Sub."+k, v)
					}
				}
				s, ok := str.(string)
				if !ok {
					add("%s: Fn::Sub template is not a string", where)
					return
				}
				for _, m := range subVarRE.FindAllStringSubmatch(s, -1) {
					name := m[1]
					if strings.HasPrefix(name, "!") {
						continue
					}
					if _, ok := vars[name]; ok {
						continue
					}
					if res, attr, dotted := strings.Cut(name, "."); dotted && !pseudoParams[name] {
						getAtt(where+" ${"+name+"}", res, attr)
						continue
					}
					if !refable(name) {
						add("%s: Fn::Sub variable ${%s} names nothing", where, name)
					}
				}
				return
			case "Fn::If", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition":
				add("%s: %s left after expanding conditions", where, fn)
				return
			}
		}
		switch x := v.(type) {
		case map[string]node:
			for k, c := range x {
				if strings.HasPrefix(k, "Fn::") && !intrinsicKeys[k] {
					add("%s: unknown intrinsic function %s", where, k)
				}
				if strings.HasPrefix(k, "Fn::") && len(x) != 1 {
					add("%s: %s shares its mapping with other keys", where, k)
				}
				walk(where+"."+k, c)
			}
		case []node:
			for i, c := range x {
				walk(fmt.Sprintf("%s[%d]", where, i), c)
			}
		}
	}
	for name, r := range resources {
		m, _ := r.(map[string]node)
		walk("Resources."+name, m["Properties"])
		deps := m["DependsOn"]
		if s, ok := deps.(string); ok {
			deps = []node{s}
		}
		list, _ := deps.([]node)
		for _, d := range list {
			if _, ok := resources[fmt.Sprint(d)]; !ok {
				add("resource %s: DependsOn %v, which is not a resource", name, d)
			}
		}
	}
	walk("Outputs", e.tpl["Outputs"])
	sort.Strings(problems)
	return problems
}

func schemaErrors(s *gojsonschema.Schema, v node) []string {
	res, err := s.Validate(gojsonschema.NewGoLoader(v))
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range res.Errors() {
		out = append(out, e.Field()+": "+e.Description())
	}
	return out
}

// TestTemplatesValidate is the CI check that both templates are what CloudFormation accepts:
// known resource types, known properties of the right types, required properties present, and
// every reference resolving, in every scenario.
func TestTemplatesValidate(t *testing.T) {
	t.Parallel()
	for file, scenarios := range map[string][]scenario{baseFile: baseScenarios, ecsFile: ecsScenarios, consumerEventsFile: consumerEventsScenarios} {
		for name, e := range expandAll(t, file, scenarios) {
			t.Run(file+"/"+name, func(t *testing.T) {
				t.Parallel()
				for _, p := range validate(e) {
					t.Error(p)
				}
				if len(e.resources()) == 0 {
					t.Error("no resources at all")
				}
			})
		}
	}
}

// TestValidationCatchesMistakes proves the check above can fail: each mutation is a mistake
// that CloudFormation would refuse, and the validation must name it.
func TestValidationCatchesMistakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, from, to, want string
	}{
		{"misspelt resource type", baseFile, "Type: AWS::SQS::Queue\n", "Type: AWS::SQS::Queu\n", `unknown resource type "AWS::SQS::Queu"`},
		{"misspelt property", baseFile, "      VisibilityTimeout: 60\n", "      VisibilityTimeOut: 60\n", "Additional property VisibilityTimeOut is not allowed"},
		{"misspelt nested property", ecsFile, "          ReadonlyRootFilesystem: true\n", "          ReadOnlyRootFilesystem: true\n", "Additional property ReadOnlyRootFilesystem is not allowed"},
		{"misspelt resource attribute", baseFile, "    DeletionPolicy: Retain\n", "    DeletionPolicey: Retain\n", "Additional property DeletionPolicey is not allowed"},
		{"wrong property type", baseFile, "      MessageRetentionPeriod: 1209600\n", "      MessageRetentionPeriod: [14, days]\n", "MessageRetentionPeriod"},
		{"missing required property", ecsFile, "          Image: !Ref Image\n", "", "Image is required"},
		{"Ref to nothing", baseFile, "TargetKeyId: !Ref Key\n", "TargetKeyId: !Ref Kye\n", "Ref Kye names no parameter"},
		{"GetAtt of an unknown attribute", baseFile, "!GetAtt ExpiryQueue.Arn", "!GetAtt ExpiryQueue.ARN", "has no attribute ARN"},
		{"Sub variable naming nothing", baseFile, "QueueName: !Sub ${NamePrefix}-expiry\n", "QueueName: !Sub ${NamePrefx}-expiry\n", "${NamePrefx} names nothing"},
		{"Ref to a resource its condition removed", baseFile, "- !If [HasApp2, !Ref App2Secret, !Ref AWS::NoValue]", "- !Ref App2Secret", "Ref App2Secret names no parameter, resource (in this scenario)"},
		{"misspelt rule key", baseFile, "        AssertDescription: App2ClientId", "        AssertDescriptoin: App2ClientId", `unknown assertion key "AssertDescriptoin"`},
		{"default outside the allowed values", ecsFile, "    Default: DISABLED\n", "    Default: disabled\n", "not in AllowedValues"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := string(mustRead(t, tc.file))
			if !strings.Contains(src, tc.from) {
				t.Fatalf("%s no longer contains %q; update the mutation", tc.file, tc.from)
			}
			mutated := strings.Replace(src, tc.from, tc.to, 1)
			scenarios := baseScenarios
			if tc.file == ecsFile {
				scenarios = ecsScenarios
			}
			var all []string
			tpl, err := parseTemplate([]byte(mutated))
			if err != nil {
				all = append(all, err.Error())
			} else {
				for _, sc := range scenarios {
					e, err := expand(tpl, sc)
					if err != nil {
						all = append(all, err.Error())
						continue
					}
					all = append(all, validate(e)...)
				}
			}
			if !slices.ContainsFunc(all, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("mutation %q -> %q: no problem mentions %q; got %q", tc.from, tc.to, tc.want, all)
			}
		})
	}
}
