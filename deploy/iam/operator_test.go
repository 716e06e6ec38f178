package iam_test

import (
	"go/ast"
	"go/token"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// operatorFile is the identity policy of whoever runs `lwa-rotator status`, `rotate` and `seed`.
const operatorFile = "operator-policy.json"

// operatorRoots are the packages holding those commands' AWS calls; cmd/lwa-rotator only builds
// the SDK client and the vault.Store it hands to them.
var operatorRoots = []string{"internal/operator/status", "internal/operator/request", "internal/operator/seed"}

// operatorStatementCommands says which command each statement is for, so an operator who never
// seeds can drop that statement; every statement must serve at least one command's calls.
var operatorStatementCommands = map[string][]string{
	"OperatorReadRotationState": {"internal/operator/status", "internal/operator/request", "internal/operator/seed"},
	"OperatorRequestRotation":   {"internal/operator/request"},
	"OperatorSeedSecrets":       {"internal/operator/seed"},
	"KmsViaSecretsManager":      {"internal/operator/status", "internal/operator/request", "internal/operator/seed"},
}

// modelPackage is the rotation model. The operator commands judge with its pure decision, and it
// links the daemon's notification types (notifications, which declares the SQS consumer's calls),
// so the import graph is not followed through it; instead an operator package may not name what
// would hand the model a client (modelClients).
const modelPackage = "rotator"

var modelClients = []string{"New", "Options", "Rotator"}

// storeRead is the daemon's read of a secret, which the operator commands and doctor use through
// an interface of their own: Read(ctx, secretID) (vault.Snapshot, error).
const storeRead = "Store.Read"

// vaultReadCalls returns the operations vault.Store.Read makes: those its own source names and
// those of every vault function and Store method it calls, followed through vault's source.
func vaultReadCalls(t *testing.T, m module) set {
	t.Helper()
	decls := map[string]*ast.FuncDecl{}
	bySite := map[string][]string{}
	for _, f := range m.pkgs["vault"] {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok {
				decls[declName(fd)] = fd
			}
		}
		refs, err := scanFile("vault", f)
		if err != nil {
			t.Error(err)
		}
		for _, r := range refs {
			bySite[r.Site] = append(bySite[r.Site], r.Op)
		}
	}
	ops, seen := set{}, set{}
	var visit func(name string)
	visit = func(name string) {
		fd, ok := decls[name]
		if !ok || seen[name] {
			return
		}
		seen[name] = true
		for _, op := range bySite["vault."+name] {
			ops[op] = true
		}
		recv := "" // the receiver's name: its method calls are followed (s.describe), its fields' not (s.cache.put)
		if fd.Recv != nil && len(fd.Recv.List) == 1 && len(fd.Recv.List[0].Names) == 1 {
			recv = fd.Recv.List[0].Names[0].Name
		}
		ast.Inspect(fd.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				visit(fn.Name)
			case *ast.SelectorExpr:
				if id, ok := fn.X.(*ast.Ident); ok && recv != "" && id.Name == recv {
					typ, _, _ := strings.Cut(name, ".")
					visit(typ + "." + fn.Sel.Name)
				}
			}
			return true
		})
	}
	visit(storeRead)
	if len(ops) == 0 {
		t.Fatalf("found no AWS operation behind vault.%s: has the read moved?", storeRead)
	}
	return ops
}

// readsVault reports whether f declares the daemon's read as an interface method: Read returning
// a vault.Snapshot, which *vault.Store satisfies.
func readsVault(f *ast.File) bool {
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		it, ok := n.(*ast.InterfaceType)
		if !ok {
			return true
		}
		for _, meth := range it.Methods.List {
			ft, ok := meth.Type.(*ast.FuncType)
			if !ok || len(meth.Names) != 1 || meth.Names[0].Name != "Read" || ft.Results == nil {
				continue
			}
			for _, r := range ft.Results.List {
				if sel, ok := r.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Snapshot" {
					if id, ok := sel.X.(*ast.Ident); ok && id.Name == "vault" {
						found = true
					}
				}
			}
		}
		return true
	})
	return found
}

// checkModelUse fails for every use of the model's client-holding declarations in pkg's files.
func checkModelUse(t *testing.T, m module, pkg string) {
	t.Helper()
	for _, f := range m.pkgs[pkg] {
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == modelPackage && slices.Contains(modelClients, sel.Sel.Name) {
				t.Errorf("%s uses %s.%s: an operator command uses the rotation model's pure decision, never a rotator that calls AWS", pkg, modelPackage, sel.Sel.Name)
			}
			return true
		})
	}
}

// operatorCalls returns the operations each operator package names through its own interfaces
// (the daemon's read, vault.Store.Read, counting as the calls it makes), and checks the packages
// cannot reach AWS any other way: no vault.Store (whose SecretsManager is the daemon's whole set
// of calls), from the vault only declarations that call nothing, and from the rotation model
// only its pure decision.
func operatorCalls(t *testing.T) map[string]set {
	t.Helper()
	m := loadModule(t)
	// Which vault declarations touch the SDK: those must not be used by operator code.
	vaultCalls := set{}
	for _, f := range m.pkgs["vault"] {
		refs, err := scanFile("vault", f)
		if err != nil {
			t.Error(err)
		}
		for _, r := range refs {
			vaultCalls[r.Site] = true
			if i := strings.LastIndex(r.Site, "."); strings.Count(r.Site, ".") == 2 {
				vaultCalls[r.Site[:i]] = true // a method's receiver type
			}
		}
	}
	readOps := vaultReadCalls(t, m)
	calls := map[string]set{}
	for _, root := range operatorRoots {
		files := m.pkgs[root]
		if len(files) == 0 {
			t.Fatalf("no Go files in %s", root)
		}
		for p := range m.reachable(root, modelPackage) {
			if p == root || p == "vault" || p == modelPackage {
				continue
			}
			for _, f := range m.pkgs[p] {
				if refs, _ := scanFile(shortPkg(p), f); len(refs) > 0 {
					t.Errorf("%s imports %s, which calls AWS (%s): those calls would escape %s", root, p, refs[0].Op, operatorFile)
					break
				}
			}
			checkModelUse(t, m, p)
		}
		checkModelUse(t, m, root)
		calls[root] = set{}
		ifaces := 0
		for _, f := range files {
			refs, err := scanFile(shortPkg(root), f)
			if err != nil {
				t.Error(err)
			}
			for _, r := range refs {
				calls[root][r.Op] = true
				if r.Iface {
					ifaces++
				}
			}
			if readsVault(f) {
				ifaces++
				maps.Copy(calls[root], readOps)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "vault" && vaultCalls["vault."+sel.Sel.Name] {
					t.Errorf("%s uses vault.%s, which calls AWS: operator code calls AWS only through its own interfaces", root, sel.Sel.Name)
				}
				return true
			})
		}
		if ifaces == 0 {
			t.Errorf("scanner found no AWS interface in %s: the checks below would pass vacuously", root)
		}
	}
	return calls
}

// The daemon's read is exactly one DescribeSecret and GetSecretValue (of AWSCURRENT and
// AWSPENDING): what the operator commands and doctor are granted for it.
func TestVaultReadCalls(t *testing.T) {
	t.Parallel()
	got := vaultReadCalls(t, loadModule(t))
	if want := setOf("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"); !slices.Equal(got.sorted(), want.sorted()) {
		t.Errorf("vault.Store.Read calls %v, want %v", got.sorted(), want.sorted())
	}
}

// TestOperatorPolicyMatchesCalls: no operator call without a permission, no permission without
// a call, and each statement serves the commands it says it does.
func TestOperatorPolicyMatchesCalls(t *testing.T) {
	t.Parallel()
	calls := operatorCalls(t)
	want, wantVia := set{}, map[kmsGrant]bool{}
	viaBy := map[kmsGrant]set{}
	actionBy := map[string]set{}
	for root, ops := range calls {
		t.Logf("%s calls %v", root, ops.sorted())
		for op := range ops {
			a, ok := iamAction[op]
			if !ok {
				t.Errorf("%s (called in %s) has no iamAction entry: look its action up and add it", op, root)
				continue
			}
			want[a] = true
			if actionBy[a] == nil {
				actionBy[a] = set{}
			}
			actionBy[a][root] = true
			for _, g := range viaNeeds[op] {
				wantVia[g] = true
				if viaBy[g] == nil {
					viaBy[g] = set{}
				}
				viaBy[g][root] = true
			}
		}
	}
	got, gotVia := set{}, map[kmsGrant]bool{}
	for _, s := range loadPolicy(t, operatorFile).Statement {
		if s.Effect != "Allow" {
			t.Errorf("%s: unexpected %s statement", s.Sid, s.Effect)
			continue
		}
		cmds, ok := operatorStatementCommands[s.Sid]
		if !ok {
			t.Errorf("%s: no entry in operatorStatementCommands", s.Sid)
		}
		svc, _, _ := strings.Cut(s.Action[0], ":")
		if missing, extra := diff(resources[svc], setOf(s.Resource...)); len(missing)+len(extra) > 0 {
			t.Errorf("%s: resources lack %v and have extra %v", s.Sid, missing, extra)
		}
		users := set{}
		for _, a := range s.Action {
			if p, _, _ := strings.Cut(a, ":"); p != svc {
				t.Errorf("%s mixes services %s and %s: one service per statement", s.Sid, svc, p)
			}
			if v := s.viaService(); v != "" {
				gotVia[kmsGrant{a, v}] = true
				maps.Copy(users, viaBy[kmsGrant{a, v}])
			} else {
				got[a] = true
				maps.Copy(users, actionBy[a])
			}
		}
		if !slices.Equal(users.sorted(), setOf(cmds...).sorted()) {
			t.Errorf("%s serves %v, but operatorStatementCommands says %v", s.Sid, users.sorted(), cmds)
		}
	}
	reportCallDiff(t, "operator ", want, got, wantVia, gotVia)
}

// TestOperatorTagsAreOnlyTheRequest: the operator may write the request tags and nothing else,
// so it cannot forge the daemon's rotation state; and every request tag the vault defines is
// admitted, or `rotate` fails with AccessDenied in production while passing against moto.
func TestOperatorTagsAreOnlyTheRequest(t *testing.T) {
	t.Parallel()
	var keys strs
	for _, s := range loadPolicy(t, operatorFile).Statement {
		if slices.Contains(s.Action, "secretsmanager:TagResource") {
			if len(s.Condition) != 1 {
				t.Errorf("%s: want exactly the ForAllValues:StringEquals tag-key condition, have %v", s.Sid, s.Condition)
			}
			keys = s.Condition["ForAllValues:StringEquals"]["aws:TagKeys"]
		}
		if slices.Contains(s.Action, "secretsmanager:UntagResource") {
			t.Errorf("%s: the operator never removes tags; the daemon does", s.Sid)
		}
	}
	var requestTags []string
	for _, f := range loadModule(t).pkgs["vault"] {
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if bl, ok := valueAt(vs, i).(*ast.BasicLit); ok && strings.HasPrefix(name.Name, "TagRequest") && name.Name != "TagRequestedAt" && bl.Kind == token.STRING {
					v, _ := strconv.Unquote(bl.Value)
					requestTags = append(requestTags, v)
				}
			}
			return true
		})
	}
	if len(requestTags) == 0 {
		t.Fatal("found no TagRequest* constants in vault")
	}
	if missing, extra := diff(setOf(requestTags...), setOf(keys...)); len(missing)+len(extra) > 0 {
		t.Errorf("the operator's tag keys lack %v and have extra %v (want exactly vault's request tags)", missing, extra)
	}
}
