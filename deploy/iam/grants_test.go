package iam_test

import (
	"maps"
	"slices"
	"testing"
)

type set map[string]bool

func setOf(xs ...string) set {
	s := set{}
	for _, x := range xs {
		s[x] = true
	}
	return s
}

func (s set) sorted() []string { return slices.Sorted(maps.Keys(s)) }

// diff reports what want lacks in got and what got has beyond want.
func diff(want, got set) (missing, extra []string) {
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}

func isAmazon(p *principal) bool { return p.has(amazonPrincipal) || p.has(amazonAccount) }

// TestAmazonGrants: Amazon's notification account gets exactly what delivery needs (too little and
// delivery fails silently; more and Amazon could read or reconfigure the queue), and nobody else
// is granted anything by the resource policies beyond the documented principals.
func TestAmazonGrants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want set
		// allowed are the principals an Allow statement in this file may name.
		allowed set
	}{
		{queueFile, setOf("sqs:SendMessage", "sqs:GetQueueAttributes"), setOf(amazonPrincipal)},
		{keyFile, setOf("kms:GenerateDataKey", "kms:Decrypt"), setOf(amazonPrincipal, rootPrincipal, daemonPrincipal)},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			got := set{}
			for _, s := range loadPolicy(t, tc.file).Statement {
				if s.Effect != "Allow" {
					continue
				}
				for _, p := range s.Principal.AWS {
					if !tc.allowed[p] {
						t.Errorf("%s: Allow for principal %q; only %v belong here", s.Sid, p, tc.allowed.sorted())
					}
				}
				if !isAmazon(s.Principal) {
					continue
				}
				if len(s.Principal.AWS) != 1 {
					t.Errorf("%s: Amazon's grant shares its statement with %v", s.Sid, s.Principal.AWS)
				}
				for _, a := range s.Action {
					got[a] = true
				}
			}
			if missing, extra := diff(tc.want, got); len(missing)+len(extra) > 0 {
				t.Errorf("Amazon (%s) is missing %v and has extra %v", amazonAccount, missing, extra)
			}
		})
	}
}

// kmsGrant is one KMS action and the service it must come through ("" for a direct call).
type kmsGrant struct{ action, via string }

func kmsGrants(statements []statement, keep func(statement) bool) map[kmsGrant]bool {
	out := map[kmsGrant]bool{}
	for _, s := range statements {
		if s.Effect != "Allow" || !keep(s) {
			continue
		}
		for _, a := range s.Action {
			if len(a) > 4 && a[:4] == "kms:" {
				out[kmsGrant{a, s.viaService()}] = true
			}
		}
	}
	return out
}

// TestKeyPolicyMatchesDaemonPolicy: the key policy names the daemon role for exactly the KMS use
// its identity policy has, with the same ViaService limits, so neither side drifts alone.
func TestKeyPolicyMatchesDaemonPolicy(t *testing.T) {
	t.Parallel()
	fromIdentity := kmsGrants(loadPolicy(t, daemonFile).Statement, func(statement) bool { return true })
	fromKey := kmsGrants(loadPolicy(t, keyFile).Statement, func(s statement) bool { return s.Principal.has(daemonPrincipal) })
	if len(fromIdentity) == 0 {
		t.Fatal("the daemon policy grants no KMS use at all")
	}
	if !maps.Equal(fromIdentity, fromKey) {
		t.Errorf("daemon KMS grants differ:\n identity policy %v\n key policy      %v", fromIdentity, fromKey)
	}
}
