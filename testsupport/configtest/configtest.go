// Package configtest lets tests put a value into any field of a configuration file: the leak
// tests of config and of the integration suite feed a pasted secret into every field this way,
// so a field added to config.Config is covered without editing them.
package configtest

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/spapi-tools/lwa-rotator/config"
)

// Pasted is what a user copies from the Developer Console: a client secret (not a real one).
const Pasted = "amzn1.oa2-cs.v1.5f0c1e9a7b3d4c2e8f6a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"

// PastedTail is the secret's random part, pasted without its prefix.
const PastedTail = "5f0c1e9a7b3d4c2e8f6a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"

// Leaks reports whether out holds the pasted secret, whole or any 24 characters of its tail.
func Leaks(out string) bool {
	for i := 0; i+24 <= len(PastedTail); i += 8 {
		if strings.Contains(out, PastedTail[i:i+24]) {
			return true
		}
	}
	return strings.Contains(out, Pasted)
}

// FieldPaths lists every field a configuration file can set, as dotted paths with [0] for list
// elements and .na for the region map.
func FieldPaths() []string { return leafPaths(reflect.TypeOf(config.Config{}), "") }

func leafPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("yaml")
		if !ok {
			continue
		}
		path := strings.Split(tag, ",")[0]
		if prefix != "" {
			path = prefix + "." + path
		}
		switch ft := f.Type; {
		case ft == reflect.TypeOf(config.Duration(0)):
			out = append(out, path)
		case ft.Kind() == reflect.Struct:
			out = append(out, leafPaths(ft, path)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, leafPaths(ft.Elem(), path+"[0]")...)
		case ft.Kind() == reflect.Slice:
			out = append(out, path+"[0]")
		case ft.Kind() == reflect.Map:
			out = append(out, path+".na")
		default:
			out = append(out, path)
		}
	}
	return out
}

// Set returns raw (a configuration file) with value at path, replacing what is there. Comments
// and key order are not kept.
func Set(raw []byte, path, value string) ([]byte, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("reading the configuration to edit: %w", err)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	parts := strings.Split(path, ".")
	cur := doc
	for i, part := range parts {
		last := i == len(parts)-1
		name, isList := strings.CutSuffix(part, "[0]")
		switch {
		case isList && last:
			cur[name] = []any{value}
		case isList:
			list, _ := cur[name].([]any)
			if len(list) == 0 {
				list = []any{map[string]any{}}
			}
			m, ok := list[0].(map[string]any)
			if !ok {
				m = map[string]any{}
				list[0] = m
			}
			cur[name] = list
			cur = m
		case last:
			cur[name] = value
		default:
			m, ok := cur[name].(map[string]any)
			if !ok {
				m = map[string]any{}
				cur[name] = m
			}
			cur = m
		}
	}
	return yaml.Marshal(doc)
}
