package iam_test

import (
	"encoding/json"
	"go/ast"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spapi-tools/lwa-rotator/internal/operator/doctor"
)

// doctorRoot is the package of `lwa-rotator doctor`'s AWS calls; cmd/lwa-rotator only builds
// the SDK clients it hands over.
const doctorRoot = "internal/operator/doctor"

// doctorResources are what each doctor-policy.json statement may name.
var doctorResources = map[string]set{
	"DoctorFindDeadLetterQueues": setOf("${ExpiryDeadLetterQueueArn}", "${NewSecretDeadLetterQueueArn}"),
	"DoctorReadKeyPolicy":        setOf("${KmsKeyArn}"),
}

// doctorForbidden are selectors doctor must not use: the vault's Store writes, and the rotate
// client is the one call doctor promises never to make.
var doctorForbidden = []string{"vault.Store", "spapi.AppClient", "vault.SecretsManager"}

// readOnlyPrefixes: doctor changes nothing, so every operation it names must be a read.
var readOnlyPrefixes = []string{"Get", "Describe", "List"}

// doctorCalls returns the operations internal/operator/doctor names, each with its sites (the
// daemon's read, vault.Store.Read, counting as the calls it makes), and checks it reads only and
// does not reach the AWS calls of other packages.
func doctorCalls(t *testing.T) map[string][]string {
	t.Helper()
	m := loadModule(t)
	files := m.pkgs[doctorRoot]
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", doctorRoot)
	}
	// The rotation model is followed no further: doctor judges with its pure decision only.
	graph := m.reachable(doctorRoot, modelPackage)
	for _, p := range []string{"testsupport/sandbox", "testsupport/moto", "testsupport/awstest", "testsupport/spapisim", "internal/daemon", "notifications"} {
		if graph[p] {
			t.Errorf("doctor imports %s: its AWS calls would escape this test", p)
		}
	}
	for p := range graph {
		if p != modelPackage {
			checkModelUse(t, m, p)
		}
	}
	readOps := vaultReadCalls(t, m)
	calls := map[string][]string{}
	ifaces := set{}
	for _, f := range files {
		refs, err := scanFile(shortPkg(doctorRoot), f)
		if err != nil {
			t.Error(err)
		}
		for _, r := range refs {
			if r.Iface {
				ifaces[r.Site] = true
			}
			if !slices.Contains(calls[r.Op], r.Site) {
				calls[r.Op] = append(calls[r.Op], r.Site)
			}
		}
		if readsVault(f) {
			ifaces["doctor.Reader"] = true
			for op := range readOps {
				if !slices.Contains(calls[op], "vault."+storeRead) {
					calls[op] = append(calls[op], "vault."+storeRead)
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && slices.Contains(doctorForbidden, id.Name+"."+sel.Sel.Name) {
				t.Errorf("doctor uses %s.%s: it must read AWS only through its own interfaces and never rotate", id.Name, sel.Sel.Name)
			}
			return true
		})
	}
	for _, want := range []string{"doctor.QueueReader", "doctor.KeyReader", "doctor.SecretReader", "doctor.Reader"} {
		if !ifaces[want] {
			t.Errorf("scanner did not find interface %s (found %v)", want, ifaces.sorted())
		}
	}
	for op, sites := range calls {
		_, name, _ := strings.Cut(op, ":")
		if !slices.ContainsFunc(readOnlyPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			t.Errorf("doctor names %s at %v: doctor is read-only", op, sites)
		}
	}
	return calls
}

// TestDoctorPolicyMatchesCalls: every doctor call is granted by the daemon's policy or by
// doctor-policy.json, and doctor-policy.json grants nothing doctor does not call or the daemon
// policy already has.
func TestDoctorPolicyMatchesCalls(t *testing.T) {
	t.Parallel()
	calls := doctorCalls(t)
	t.Logf("doctor calls: %v", slices.Sorted(maps.Keys(calls)))
	daemonGranted, daemonVia := set{}, map[kmsGrant]bool{}
	for _, s := range loadPolicy(t, daemonFile).Statement {
		for _, a := range s.Action {
			if s.viaService() != "" {
				daemonVia[kmsGrant{a, s.viaService()}] = true
			} else {
				daemonGranted[a] = true
			}
		}
	}
	want := set{}
	for op, sites := range calls {
		a, ok := iamAction[op]
		if !ok {
			t.Errorf("%s (called at %v) has no iamAction entry: look its action up and add it", op, sites)
			continue
		}
		want[a] = true
		for _, g := range viaNeeds[op] {
			if !daemonVia[g] {
				t.Errorf("%s needs %s through %s, which daemon-policy.json does not grant", op, g.action, g.via)
			}
		}
	}
	doctorGranted := set{}
	for _, s := range loadPolicy(t, doctorFile).Statement {
		if s.Effect != "Allow" || s.Condition != nil {
			t.Errorf("%s: doctor's statements are plain Allows", s.Sid)
		}
		allowed, ok := doctorResources[s.Sid]
		if !ok {
			t.Errorf("%s: statement has no entry in doctorResources", s.Sid)
		} else if missing, extra := diff(allowed, setOf(s.Resource...)); len(missing)+len(extra) > 0 {
			t.Errorf("%s: resources lack %v and have extra %v", s.Sid, missing, extra)
		}
		for _, a := range s.Action {
			doctorGranted[a] = true
			if daemonGranted[a] {
				t.Errorf("%s grants %s, which daemon-policy.json already has", s.Sid, a)
			}
		}
	}
	all := set{}
	maps.Copy(all, daemonGranted)
	maps.Copy(all, doctorGranted)
	for _, a := range want.sorted() {
		if !all[a] {
			t.Errorf("doctor call without a permission in daemon-policy.json or doctor-policy.json: %s", a)
		}
	}
	for _, a := range doctorGranted.sorted() {
		if !want[a] {
			t.Errorf("doctor-policy.json grants %s, which doctor does not call", a)
		}
	}
	if len(doctorGranted) == 0 {
		t.Error("doctor-policy.json grants nothing")
	}
}

// TestDoctorFixesMatchTemplates: the statements doctor prints as fixes are the templates'
// statements for Amazon's account, filled in.
func TestDoctorFixesMatchTemplates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, sid string
		got       doctor.Statement
	}{
		{queueFile, "AmazonSpApiNotificationsDeliver", doctor.AmazonQueueStatement(placeholders["QueueArn"])},
		{keyFile, "AmazonSpApiNotificationsViaSqs", doctor.AmazonKeyStatement(placeholders["Region"])},
	}
	for _, tc := range tests {
		b, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		filled := placeholderRE.ReplaceAllStringFunc(string(b), func(s string) string {
			return placeholders[placeholderRE.FindStringSubmatch(s)[1]]
		})
		var doc struct{ Statement []map[string]any }
		if err := json.Unmarshal([]byte(filled), &doc); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(doc.Statement, func(s map[string]any) bool { return s["Sid"] == tc.sid })
		if i < 0 {
			t.Fatalf("%s has no statement %s", tc.file, tc.sid)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(tc.got.JSON()), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, doc.Statement[i]) {
			t.Errorf("doctor's fix for %s differs from %s:\n doctor   %v\n template %v", tc.sid, tc.file, got, doc.Statement[i])
		}
	}
}

// TestDoctorReservesEveryVaultTag: doctor's room-for-tags check counts every tag the vault
// writes.
func TestDoctorReservesEveryVaultTag(t *testing.T) {
	t.Parallel()
	tags := vaultTagConstants(t)
	if missing, extra := diff(setOf(tags...), setOf(doctor.DaemonTagKeys()...)); len(missing)+len(extra) > 0 {
		t.Errorf("doctor.DaemonTagKeys lacks %v and has extra %v", missing, extra)
	}
}
