package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The file is decoded by walking the YAML node tree ourselves instead of yaml.Decoder.Decode:
// the library stops at the first unknown key or wrong type, and its messages quote the offending
// value, which may be a client secret pasted into the wrong place. The walk reports every
// problem with its field path and line, and never the value.

// maxSyntaxRetries bounds how many broken lines are skipped to validate the rest of the file.
const maxSyntaxRetries = 20

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// safeYAMLMessage is the alphabet of the YAML library's own syntax messages ("did not find
// expected ',' or ']'"); anything else could be quoted input and is not repeated.
var safeYAMLMessage = regexp.MustCompile(`^[A-Za-z ,':;()\[\]{}-]{1,120}$`)

// parseTree parses raw into a node tree. A syntax error is reported with its line, the line is
// blanked (keeping the numbering) and parsing is retried, so the rest of the file is still
// validated in the same run.
func parseTree(raw []byte, p *problems) *yaml.Node {
	lines := strings.Split(string(raw), "\n")
	for range maxSyntaxRetries {
		var doc yaml.Node
		err := yaml.Unmarshal([]byte(strings.Join(lines, "\n")), &doc)
		if err == nil {
			if len(doc.Content) == 0 {
				return nil
			}
			return doc.Content[0]
		}
		m := yamlLineErr.FindStringSubmatch(err.Error())
		if m == nil {
			p.addf("", 0, "not valid YAML")
			return nil
		}
		n, _ := strconv.Atoi(m[1])
		msg := m[2]
		if !safeYAMLMessage.MatchString(msg) {
			msg = "syntax error"
		}
		p.addf("", n, "YAML syntax error: %s", msg)
		if n < 1 || n > len(lines) || lines[n-1] == "" {
			// Nothing left to skip on that line (the error is at the end of the input).
			if !blankLastContent(lines, n) {
				return nil
			}
			continue
		}
		lines[n-1] = ""
	}
	return nil
}

// blankLastContent blanks the last non-empty line at or before n, for errors reported past the
// line that caused them (an unclosed bracket is reported at the end of the file).
func blankLastContent(lines []string, n int) bool {
	if n > len(lines) {
		n = len(lines)
	}
	for i := n - 1; i >= 0; i-- {
		if strings.TrimSpace(lines[i]) != "" {
			lines[i] = ""
			return true
		}
	}
	return false
}

// decodeNode fills dst (a pointer) from n, recording each field's line in lines and every problem
// in p.
func decodeNode(n *yaml.Node, dst reflect.Value, path string, p *problems, lines map[string]int) {
	if n == nil {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	lines[path] = n.Line
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind == yaml.ScalarNode && LooksLikeSecret(n.Value) {
		p.secret(path, n.Line)
		return
	}
	switch dst.Interface().(type) {
	case *Duration:
		if n.Kind != yaml.ScalarNode {
			p.broken(path, n.Line, "must be a duration such as 90m, 720h or 30d")
			return
		}
		d, err := ParseDuration(n.Value)
		if err != nil {
			p.broken(path, n.Line, "%v", err)
			return
		}
		*dst.Interface().(*Duration) = Duration(d)
		return
	}
	v := dst.Elem()
	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			p.broken(path, n.Line, "must be a single value, not a %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			p.broken(path, n.Line, "must be true or false")
			return
		}
		b, err := strconv.ParseBool(n.Value)
		if err != nil {
			p.broken(path, n.Line, "must be true or false")
			return
		}
		v.SetBool(b)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			p.broken(path, n.Line, "must be a list, not a %s", kindName(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			decodeNode(item, out.Index(i).Addr(), fmt.Sprintf("%s[%d]", path, i), p, lines)
		}
		v.Set(out)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			p.broken(path, n.Line, "must be a mapping, not a %s", kindName(n))
			return
		}
		out := reflect.MakeMap(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if !keyShown(k.Value) {
				p.badKey(path, k)
				continue
			}
			child := join(path, k.Value)
			if seen[k.Value] {
				p.addf(child, k.Line, "set twice")
				continue
			}
			seen[k.Value] = true
			elem := reflect.New(v.Type().Elem())
			decodeNode(val, elem, child, p, lines)
			out.SetMapIndex(reflect.ValueOf(k.Value), elem.Elem())
		}
		v.Set(out)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			p.broken(path, n.Line, "must be a mapping of keys, not a %s", kindName(n))
			return
		}
		fields := yamlFields(v.Type())
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if !keyShown(k.Value) {
				p.badKey(path, k)
				continue
			}
			child := join(path, k.Value)
			idx, ok := fields[k.Value]
			if !ok {
				p.unknown(child, k)
				continue
			}
			if seen[k.Value] {
				p.addf(child, k.Line, "set twice")
				continue
			}
			seen[k.Value] = true
			decodeNode(val, v.Field(idx).Addr(), child, p, lines)
		}
	default:
		p.broken(path, n.Line, "cannot be read")
	}
}

func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		if tag, ok := t.Field(i).Tag.Lookup("yaml"); ok {
			out[strings.Split(tag, ",")[0]] = i
		}
	}
	return out
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	default:
		return "single value"
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// keyPattern is the alphabet of every key the file knows; a key outside it is not repeated.
var keyPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,39}$`)

func keyShown(k string) bool { return keyPattern.MatchString(k) && !LooksLikeSecret(k) }
