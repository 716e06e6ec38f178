package config

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SecretAdvice is what a problem says when a value has a client secret's shape.
const SecretAdvice = "looks like a client secret; store it in Secrets Manager (see `lwa-rotator seed`), never in the configuration"

var (
	// LWA client secrets start amzn1.oa2-cs.; LWA refresh and access tokens Atzr| and Atza|.
	secretPrefix = regexp.MustCompile(`(?i)amzn1\.oa2-cs\.|atz[ra]\|`)
	// A long run of hex is a secret's random part pasted without its prefix. Client ids carry 32
	// hex digits and ARNs carry UUIDs, both well below this.
	longHex = regexp.MustCompile(`[0-9a-fA-F]{48,}`)
)

// LooksLikeSecret reports whether s has the shape of an LWA client secret or token anywhere in it.
func LooksLikeSecret(s string) bool { return secretPrefix.MatchString(s) || longHex.MatchString(s) }

// problems collects what is wrong with a configuration, each as "path (line N): what". It never
// holds a value the user typed, except one that matched its field's own closed alphabet.
type problems struct {
	list []string
	// warnings are about a valid configuration; they never refuse it.
	warnings []string
	// quiet are the paths already reported as unreadable (a secret-shaped value, a wrong type):
	// later checks of those fields and their children stay quiet, so the operator reads the one
	// message that matters.
	quiet map[string]bool
	// lines and origins say where each field's value came from.
	lines   map[string]int
	origins map[string]string
}

func newProblems() *problems {
	return &problems{quiet: map[string]bool{}, lines: map[string]int{}, origins: map[string]string{}}
}

func (p *problems) where(path string, line int) string {
	if env, ok := p.origins[path]; ok {
		return fmt.Sprintf("%s (from %s)", path, env)
	}
	if line == 0 {
		line = p.lines[path]
	}
	switch {
	case path == "" && line > 0:
		return fmt.Sprintf("line %d", line)
	case path == "":
		return "configuration"
	case line > 0:
		return fmt.Sprintf("%s (line %d)", path, line)
	default:
		return path
	}
}

func (p *problems) addf(path string, line int, format string, a ...any) {
	if p.silenced(path) {
		return
	}
	p.list = append(p.list, p.where(path, line)+": "+fmt.Sprintf(format, a...))
}

// warn records a warning about a field, at the line the field was read from.
func (p *problems) warn(path, format string, a ...any) {
	p.warnings = append(p.warnings, p.where(path, 0)+": "+fmt.Sprintf(format, a...))
}

// broken reports a field that could not be read and silences what follows from it.
func (p *problems) broken(path string, line int, format string, a ...any) {
	p.addf(path, line, format, a...)
	p.quiet[path] = true
}

func (p *problems) silenced(path string) bool {
	for {
		if p.quiet[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return false
		}
		path = path[:i]
	}
}

// at reports a validation problem for a field, at the line the field was read from.
func (p *problems) at(path, format string, a ...any) { p.addf(path, 0, format, a...) }

func (p *problems) secret(path string, line int) {
	p.broken(path, line, "%s", SecretAdvice)
}

func (p *problems) unknown(path string, k *yaml.Node) {
	if strings.Contains(strings.ToLower(k.Value), "secret") || strings.Contains(strings.ToLower(k.Value), "token") {
		p.addf(path, k.Line, "unknown key; a client secret or token never goes in this file: store it in Secrets Manager (see `lwa-rotator seed`)")
		return
	}
	p.addf(path, k.Line, "unknown key")
}

// badKey reports a key that cannot be shown: one outside the keys' alphabet may be anything.
func (p *problems) badKey(parent string, k *yaml.Node) {
	if LooksLikeSecret(k.Value) {
		p.addf(parent, k.Line, "a key %s", SecretAdvice)
		return
	}
	p.addf(parent, k.Line, "unknown key (not shown: it is not a key this file uses)")
}

// shown quotes v only when it matches the field's own closed alphabet, so that a secret pasted
// into the field is never repeated.
func shown(v string, alphabet *regexp.Regexp) string {
	if alphabet.MatchString(v) && !LooksLikeSecret(v) {
		return fmt.Sprintf("%q ", v)
	}
	return ""
}
