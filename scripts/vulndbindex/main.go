// Command vulndbindex writes a Go vulnerability database in the layout govulncheck's -db
// file:///DIR reads (the database's documented v1 API: index/db.json, index/modules.json,
// ID/<id>.json) from the OSV reports of golang.org/x/vulndb's data/osv.
//
// The vulndb module has its own indexer (cmd/indexdb), but building it compiles gRPC,
// OpenTelemetry and go-git: minutes on a new machine, inside the test command's 15-minute
// budget. This one needs the standard library alone. It leaves each module's "fixed" version
// out of the index, which makes govulncheck read every report of a module it finds (the field
// only lets it skip reports fixed at or below the version in use), so it can only ever report
// more, never less. scripts/vulncheck_test.go proves the gate it feeds finds a called
// vulnerability; checked by hand, its verdicts match cmd/indexdb's on the same reports
// (docs/security.md).
//
//	go run ./scripts/vulndbindex -vulns DIR/data/osv -out DIR
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// report is the part of an OSV report the index needs.
type report struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Affected []struct {
		// OSV's package name is the Go module path ("stdlib" and "toolchain" for Go itself).
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

func main() {
	vulns := flag.String("vulns", "", "directory of OSV reports (<ID>.json)")
	out := flag.String("out", "", "directory to write the database to (must not exist)")
	flag.Parse()
	if *vulns == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: vulndbindex -vulns DIR -out DIR")
		os.Exit(2)
	}
	if err := index(*vulns, *out); err != nil {
		fmt.Fprintln(os.Stderr, "vulndbindex:", err)
		os.Exit(1)
	}
}

func index(vulns, out string) error {
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("-out %s: must not exist yet", out)
	}
	if err := os.MkdirAll(filepath.Join(out, "ID"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "index"), 0o755); err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(vulns, "*.json"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("-vulns %s: no OSV reports", vulns)
	}
	var newest time.Time
	modules := map[string]*moduleMeta{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r report
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("reading %s: %w", f, err)
		}
		if filepath.Base(f) != r.ID+".json" || strings.ContainsAny(r.ID, `/\`) {
			return fmt.Errorf("reading %s: a report's file must be named after its id", f)
		}
		if r.Modified.After(newest) {
			newest = r.Modified
		}
		seen := map[string]bool{} // a report may list a module more than once (several packages)
		for _, a := range r.Affected {
			path := a.Package.Name
			if path == "" || seen[path] {
				continue
			}
			seen[path] = true
			m := modules[path]
			if m == nil {
				m = &moduleMeta{Path: path, Vulns: []moduleVuln{}}
				modules[path] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: r.ID, Modified: r.Modified})
		}
		if err := os.WriteFile(filepath.Join(out, "ID", r.ID+".json"), b, 0o644); err != nil {
			return err
		}
	}
	list := make([]*moduleMeta, 0, len(modules))
	for _, m := range modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	if err := writeJSON(filepath.Join(out, "index", "modules.json"), list); err != nil {
		return err
	}
	return writeJSON(filepath.Join(out, "index", "db.json"), map[string]time.Time{"modified": newest})
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
