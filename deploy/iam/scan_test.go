package iam_test

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sdkServices maps the SDK packages whose *XInput types name an operation to the IAM prefix.
var sdkServices = map[string]string{
	"github.com/aws/aws-sdk-go-v2/service/sqs":            "sqs",
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager": "secretsmanager",
	"github.com/aws/aws-sdk-go-v2/service/kms":            "kms",
}

// sdkRef is one place the source names an SDK operation.
type sdkRef struct {
	Op    string // "sqs:ReceiveMessage": IAM prefix and operation
	Site  string // "vault.SecretsManager" or "vault.Store.Create"
	Iface bool   // declared as an interface method, the project's way of calling AWS
}

// scanFile finds every SDK operation a file names: interface methods taking *svc.XInput and,
// so that a direct call on a concrete client is not missed, any other svc.XInput reference.
func scanFile(pkg string, f *ast.File) ([]sdkRef, error) {
	local := map[string]string{}
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		svc, ok := sdkServices[p]
		if !ok {
			continue
		}
		name := path.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name == "." {
			return nil, fmt.Errorf("%s: dot import of %s hides which operations are called", pkg, p)
		}
		local[name] = svc
	}
	if len(local) == 0 {
		return nil, nil
	}
	opOf := func(e ast.Expr) string {
		if st, ok := e.(*ast.StarExpr); ok {
			e = st.X
		}
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return ""
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok || local[id.Name] == "" || !strings.HasSuffix(sel.Sel.Name, "Input") || sel.Sel.Name == "Input" {
			return ""
		}
		return local[id.Name] + ":" + strings.TrimSuffix(sel.Sel.Name, "Input")
	}
	var refs []sdkRef
	var errs []string
	for _, d := range f.Decls {
		site := pkg + "." + declName(d)
		ast.Inspect(d, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if op := opOf(sel); op != "" {
					refs = append(refs, sdkRef{Op: op, Site: site})
				}
			}
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			it, ok := ts.Type.(*ast.InterfaceType)
			if !ok {
				return true
			}
			for _, m := range it.Methods.List {
				ft, ok := m.Type.(*ast.FuncType)
				if !ok {
					continue
				}
				for _, p := range ft.Params.List {
					op := opOf(p.Type)
					if op == "" {
						continue
					}
					for _, name := range m.Names {
						// The IAM action is read off the input type; a renamed method would hide that.
						if _, opName, _ := strings.Cut(op, ":"); name.Name != opName {
							errs = append(errs, fmt.Sprintf("%s.%s.%s takes the input of %s", pkg, ts.Name.Name, name.Name, op))
						}
						refs = append(refs, sdkRef{Op: op, Site: pkg + "." + ts.Name.Name, Iface: true})
					}
				}
			}
			return true
		})
	}
	if len(errs) > 0 {
		return refs, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return refs, nil
}

// declName names a top-level declaration: Func, Type.Method, or the first type/var/const name.
func declName(d ast.Decl) string {
	switch d := d.(type) {
	case *ast.FuncDecl:
		if d.Recv == nil || len(d.Recv.List) == 0 {
			return d.Name.Name
		}
		t := d.Recv.List[0].Type
		if st, ok := t.(*ast.StarExpr); ok {
			t = st.X
		}
		if ix, ok := t.(*ast.IndexExpr); ok {
			t = ix.X
		}
		if id, ok := t.(*ast.Ident); ok {
			return id.Name + "." + d.Name.Name
		}
		return d.Name.Name
	case *ast.GenDecl:
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				return s.Name.Name
			case *ast.ValueSpec:
				return s.Names[0].Name
			}
		}
	}
	return "?"
}

// module is the parsed non-test source of the module, keyed by package directory ("vault").
type module struct {
	root, path string
	pkgs       map[string][]*ast.File
}

func loadModule(t *testing.T) module {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	m := module{root: dir, path: modulePath(t, filepath.Join(dir, "go.mod")), pkgs: map[string][]*ast.File{}}
	fset := token.NewFileSet()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != dir && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil && p != dir {
				return filepath.SkipDir // a nested module is not part of this binary
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(p))
		m.pkgs[filepath.ToSlash(rel)] = append(m.pkgs[filepath.ToSlash(rel)], f)
		return nil
	})
	if err != nil {
		t.Fatalf("parsing the module: %v", err)
	}
	return m
}

func modulePath(t *testing.T, gomod string) string {
	t.Helper()
	f, err := os.Open(gomod)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	t.Fatalf("%s has no module line", gomod)
	return ""
}

// reachable returns the module packages start imports, directly or not, start included. The
// packages in stop are included but not followed.
func (m module) reachable(start string, stop ...string) map[string]bool {
	seen := map[string]bool{}
	queue := []string{start}
	for len(queue) > 0 {
		pkg := queue[0]
		queue = queue[1:]
		if seen[pkg] {
			continue
		}
		seen[pkg] = true
		if pkg != start && slices.Contains(stop, pkg) {
			continue
		}
		for _, f := range m.pkgs[pkg] {
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if rel, ok := strings.CutPrefix(p, m.path+"/"); ok {
					queue = append(queue, rel)
				}
			}
		}
	}
	return seen
}
