package doctor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// policyDoc is an IAM resource policy (SQS queue policy, KMS key policy) as AWS accepts it:
// Statement is an object or a list; Principal "*" or a map of kinds to a string or list; Action,
// Resource and their Not* forms a string or list; condition values strings, booleans or numbers.
type policyDoc struct {
	Statements []policyStatement
}

type policyStatement struct {
	Sid          string
	Effect       string
	Principal    *principals
	NotPrincipal *principals
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	// Condition: operator → key → values.
	Condition map[string]map[string][]string
}

// principals is a Principal or NotPrincipal element: "*" or {"AWS": …, "Service": …, …}.
type principals struct {
	Any   bool
	Kinds map[string][]string
}

// stringList is IAM's "a string or a list of strings"; scalars are kept as their JSON text.
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var raw any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out, err := flatten(raw)
	if err != nil {
		return err
	}
	*s = out
	return nil
}

func flatten(raw any) ([]string, error) {
	switch v := raw.(type) {
	case string:
		return []string{v}, nil
	case bool, float64:
		return []string{fmt.Sprint(v)}, nil
	case []any:
		var out []string
		for _, e := range v {
			f, err := flatten(e)
			if err != nil {
				return nil, err
			}
			if len(f) != 1 {
				return nil, errors.New("nested list")
			}
			out = append(out, f[0])
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string or a list of strings, got %T", raw)
}

func (p *principals) UnmarshalJSON(b []byte) error {
	var star string
	if err := json.Unmarshal(b, &star); err == nil {
		if star != "*" {
			return errors.New(`a principal given as a string must be "*"`)
		}
		p.Any = true
		return nil
	}
	var m map[string]stringList
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New("principal is neither \"*\" nor a map of principal kinds")
	}
	p.Kinds = map[string][]string{}
	for k, v := range m {
		p.Kinds[k] = v
	}
	return nil
}

// parsePolicy reads a policy document. Errors name the element that is wrong, never its value.
func parsePolicy(text string) (policyDoc, error) {
	var raw struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return policyDoc{}, errors.New("the policy is not valid JSON")
	}
	if len(raw.Statement) == 0 {
		return policyDoc{}, errors.New("the policy has no Statement")
	}
	type stmtJSON struct {
		Sid          string
		Effect       string
		Principal    *principals
		NotPrincipal *principals
		Action       stringList
		NotAction    stringList
		Resource     stringList
		NotResource  stringList
		Condition    map[string]map[string]stringList
	}
	var list []stmtJSON
	trimmed := bytes.TrimSpace(raw.Statement)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var one stmtJSON
		if err := json.Unmarshal(trimmed, &one); err != nil {
			return policyDoc{}, fmt.Errorf("the policy's Statement is malformed: %s", jsonField(err))
		}
		list = []stmtJSON{one}
	} else if err := json.Unmarshal(trimmed, &list); err != nil {
		return policyDoc{}, fmt.Errorf("the policy's Statement is malformed: %s", jsonField(err))
	}
	var doc policyDoc
	for i, s := range list {
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return policyDoc{}, fmt.Errorf("statement %d (Sid %q) has an Effect that is neither Allow nor Deny", i, s.Sid)
		}
		st := policyStatement{Sid: s.Sid, Effect: s.Effect, Principal: s.Principal, NotPrincipal: s.NotPrincipal,
			Action: s.Action, NotAction: s.NotAction, Resource: s.Resource, NotResource: s.NotResource}
		if len(s.Condition) > 0 {
			st.Condition = map[string]map[string][]string{}
			for op, kv := range s.Condition {
				st.Condition[op] = map[string][]string{}
				for k, v := range kv {
					st.Condition[op][k] = v
				}
			}
		}
		doc.Statements = append(doc.Statements, st)
	}
	return doc, nil
}

// jsonField keeps the name of the element a JSON error is about and drops any quoted input.
func jsonField(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return fmt.Sprintf("element %s has the wrong JSON type", typ.Field)
	}
	return "invalid element"
}

// request is one call as a policy evaluator sees it. Context holds the condition keys whose value
// doctor knows for that call; a key outside it makes a condition "unknown", not false.
type request struct {
	// PrincipalKind is "AWS" or "Service"; Principal the account id or service name.
	PrincipalKind string
	Principal     string
	Action        string
	Resource      string
	Context       map[string]string
}

// tri is a three-valued truth: doctor cannot see every condition AWS evaluates.
type tri int

const (
	no tri = iota
	unknown
	yes
)

func and(a, b tri) tri { return min(a, b) }

// verdict is the outcome of evaluating one request against a policy.
type verdict struct {
	// State is "allowed", "denied", "not-allowed" or "unknown".
	State string
	// Sid names the deciding statement (or the statements whose conditions doctor could not
	// evaluate); "statement N" when it has no Sid.
	Sid string
	// Public: the only allowing statement names every principal ("*") with no condition.
	Public bool
}

// evaluate applies IAM's rule: an explicit Deny wins, then an explicit Allow, else not allowed.
func evaluate(doc policyDoc, r request) verdict {
	var allowYes, allowUnknown, denyUnknown []string
	public := true
	for i, s := range doc.Statements {
		name := s.Sid
		if name == "" {
			name = fmt.Sprintf("statement %d", i)
		}
		m := s.applies(r)
		switch {
		case m == yes && s.Effect == "Deny":
			return verdict{State: "denied", Sid: name}
		case m == unknown && s.Effect == "Deny":
			denyUnknown = append(denyUnknown, name)
		case m == yes:
			allowYes = append(allowYes, name)
			if !(s.Principal != nil && s.Principal.everyone() && len(s.Condition) == 0) {
				public = false
			}
		case m == unknown:
			allowUnknown = append(allowUnknown, name)
		}
	}
	switch {
	case len(denyUnknown) > 0 && (len(allowYes) > 0 || len(allowUnknown) > 0):
		return verdict{State: "unknown", Sid: strings.Join(denyUnknown, ", ")}
	case len(allowYes) > 0:
		return verdict{State: "allowed", Sid: allowYes[0], Public: public}
	case len(allowUnknown) > 0:
		return verdict{State: "unknown", Sid: strings.Join(allowUnknown, ", ")}
	}
	return verdict{State: "not-allowed"}
}

func (s policyStatement) applies(r request) tri {
	var p tri
	switch {
	case s.Principal != nil:
		p = boolTri(s.Principal.matches(r))
	case s.NotPrincipal != nil:
		p = boolTri(!s.NotPrincipal.matches(r))
	default:
		p = no // a resource policy statement without a principal grants nobody
	}
	var a tri
	switch {
	case len(s.Action) > 0:
		a = boolTri(anyMatch(s.Action, r.Action, true))
	case len(s.NotAction) > 0:
		a = boolTri(!anyMatch(s.NotAction, r.Action, true))
	}
	var res tri
	switch {
	case len(s.Resource) > 0:
		res = boolTri(anyMatch(s.Resource, r.Resource, false))
	case len(s.NotResource) > 0:
		res = boolTri(!anyMatch(s.NotResource, r.Resource, false))
	}
	return and(and(p, a), and(res, s.conditions(r)))
}

func boolTri(b bool) tri {
	if b {
		return yes
	}
	return no
}

// everyone reports "*" or {"AWS": "*"}: any principal at all.
func (p *principals) everyone() bool {
	return p.Any || slices.Contains(p.Kinds["AWS"], "*")
}

func (p *principals) matches(r request) bool {
	if p.Any {
		return true
	}
	for _, v := range p.Kinds[r.PrincipalKind] {
		switch {
		case v == "*", v == r.Principal:
			return true
		case r.PrincipalKind == "AWS" && v == "arn:aws:iam::"+r.Principal+":root":
			return true
		}
	}
	return false
}

func anyMatch(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			p, s = strings.ToLower(p), strings.ToLower(s)
		}
		if wildcard(p, s) {
			return true
		}
	}
	return false
}

// wildcard is IAM's matching: * matches any run of characters, ? exactly one.
func wildcard(pattern, s string) bool {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if wildcard(pattern[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != pattern[0] {
				return false
			}
		}
		pattern, s = pattern[1:], s[1:]
	}
	return s == ""
}

// conditions evaluates every condition block (they are ANDed). Operators doctor does not model,
// and keys whose value it does not know for the request, give "unknown".
func (s policyStatement) conditions(r request) tri {
	out := yes
	ops := make([]string, 0, len(s.Condition))
	for op := range s.Condition {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		for key, values := range s.Condition[op] {
			out = and(out, condition(op, key, values, r))
		}
	}
	return out
}

func condition(op, key string, values []string, r request) tri {
	if strings.HasPrefix(op, "ForAnyValue:") || strings.HasPrefix(op, "ForAllValues:") {
		return unknown
	}
	// A known key is present, so ...IfExists behaves like the plain operator.
	base, _ := strings.CutSuffix(op, "IfExists")
	v, known := r.Context[strings.ToLower(key)]
	if !known {
		return unknown
	}
	var match func(pattern string) bool
	negate := false
	switch base {
	case "StringEquals", "ArnEquals":
		match = func(p string) bool { return p == v }
	case "StringNotEquals", "ArnNotEquals":
		match, negate = func(p string) bool { return p == v }, true
	case "StringEqualsIgnoreCase":
		match = func(p string) bool { return strings.EqualFold(p, v) }
	case "StringLike", "ArnLike":
		match = func(p string) bool { return wildcard(p, v) }
	case "StringNotLike", "ArnNotLike":
		match, negate = func(p string) bool { return wildcard(p, v) }, true
	case "Bool":
		match = func(p string) bool { return strings.EqualFold(p, v) }
	default:
		return unknown
	}
	hit := false
	for _, p := range values {
		if match(p) {
			hit = true
		}
	}
	return boolTri(hit != negate)
}
