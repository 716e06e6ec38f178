package iam_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	daemonFile = "daemon-policy.json"
	queueFile  = "queue-policy.json"
	keyFile    = "kms-key-policy.json"
	// doctorFile is the optional identity policy `lwa-rotator doctor` needs beside daemonFile.
	doctorFile = "doctor-policy.json"

	// amazonPrincipal is the account SP-API delivers notifications from.
	amazonPrincipal = "arn:aws:iam::437568002678:root"
	amazonAccount   = "437568002678"
	daemonPrincipal = "${DaemonRoleArn}"
	rootPrincipal   = "arn:aws:iam::${AccountId}:root"
	// rootAdminSid is the one statement allowed a wildcard action: without kms:* for the account
	// root a key can become unmanageable, and IAM policies cannot grant access to it at all.
	rootAdminSid = "EnableRootAccountAdministration"
)

// strs is IAM's "a string or a list of strings".
type strs []string

func (s *strs) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = strs{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*s = many
	return nil
}

// principal is "*" or {"AWS": ...}; other principal kinds are rejected because none belongs here.
type principal struct {
	Any bool
	AWS strs
}

func (p *principal) UnmarshalJSON(b []byte) error {
	var star string
	if err := json.Unmarshal(b, &star); err == nil {
		if star != "*" {
			return fmt.Errorf("principal string %q: only \"*\" is valid", star)
		}
		p.Any = true
		return nil
	}
	var m struct {
		AWS strs `json:"AWS"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("principal: %w", err)
	}
	p.AWS = m.AWS
	return nil
}

func (p *principal) has(arn string) bool { return p != nil && slices.Contains(p.AWS, arn) }

type statement struct {
	Sid       string
	Effect    string
	Principal *principal
	Action    strs
	Resource  strs
	Condition map[string]map[string]strs
}

// viaService returns the kms:ViaService the statement is limited to, "" if none.
func (s statement) viaService() string {
	v := s.Condition["StringEquals"]["kms:ViaService"]
	if len(v) != 1 {
		return ""
	}
	return v[0]
}

type policy struct {
	Version   string
	Id        string
	Statement []statement
}

// loadPolicy decodes strictly: an unknown key ("Actions", "NotAction") is a mistake here.
func loadPolicy(t *testing.T, name string) policy {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	var p policy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("%s is not a valid policy document: %v", name, err)
	}
	if dec.More() {
		t.Fatalf("%s has data after the policy document", name)
	}
	return p
}

var sidRE = regexp.MustCompile(`^[A-Za-z0-9]+$`)
var actionRE = regexp.MustCompile(`^[a-z0-9-]+:([A-Z][A-Za-z0-9]*|\*)$`)

func TestPoliciesWellFormed(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{daemonFile, queueFile, keyFile, doctorFile, operatorFile} {
		if !slices.Contains(files, want) {
			t.Errorf("%s is missing", want)
		}
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := loadPolicy(t, name)
			// Only an identity policy has no Principal; a resource policy needs one on every statement.
			identity := name == daemonFile || name == doctorFile || name == operatorFile
			if p.Version != "2012-10-17" {
				t.Errorf("Version = %q, want 2012-10-17 (older versions do not expand ${...} and misread conditions)", p.Version)
			}
			if len(p.Statement) == 0 {
				t.Fatal("no statements")
			}
			seen := map[string]bool{}
			for i, s := range p.Statement {
				where := fmt.Sprintf("statement %d (%s)", i, s.Sid)
				if !sidRE.MatchString(s.Sid) {
					t.Errorf("%s: Sid %q must be non-empty and alphanumeric", where, s.Sid)
				}
				if seen[s.Sid] {
					t.Errorf("%s: duplicate Sid", where)
				}
				seen[s.Sid] = true
				if s.Effect != "Allow" && s.Effect != "Deny" {
					t.Errorf("%s: Effect %q", where, s.Effect)
				}
				if len(s.Action) == 0 || len(s.Resource) == 0 {
					t.Errorf("%s: needs Action and Resource", where)
				}
				for _, a := range s.Action {
					if !actionRE.MatchString(a) {
						t.Errorf("%s: action %q is not service:Operation", where, a)
					}
				}
				switch {
				case identity && s.Principal != nil:
					t.Errorf("%s: an identity policy statement has no Principal", where)
				case !identity && s.Principal == nil:
					t.Errorf("%s: a resource policy statement needs a Principal", where)
				case s.Principal != nil && s.Principal.Any && s.Effect == "Allow":
					t.Errorf("%s: allows everyone", where)
				}
			}
		})
	}
}

// TestNoWildcardActions: a wildcard grants whatever AWS adds to the service later.
func TestNoWildcardActions(t *testing.T) {
	t.Parallel()
	for _, name := range []string{daemonFile, queueFile, keyFile, doctorFile, operatorFile} {
		for _, s := range loadPolicy(t, name).Statement {
			for _, a := range s.Action {
				if !strings.Contains(a, "*") {
					continue
				}
				rootAdmin := name == keyFile && s.Sid == rootAdminSid && a == "kms:*" && s.Effect == "Allow" &&
					!s.Principal.Any && slices.Equal(s.Principal.AWS, []string{rootPrincipal})
				if !rootAdmin {
					t.Errorf("%s %s: wildcard action %q", name, s.Sid, a)
				}
			}
		}
	}
}

func TestResourceScoping(t *testing.T) {
	t.Parallel()
	for _, name := range []string{daemonFile, doctorFile, operatorFile} {
		for _, s := range loadPolicy(t, name).Statement {
			if name == daemonFile && s.Sid == listStatementSid {
				// The one exception: these two actions have no resource type.
				want := strs{"secretsmanager:BatchGetSecretValue", "secretsmanager:ListSecrets"}
				if !slices.Equal(slices.Sorted(slices.Values(s.Action)), []string(want)) || !slices.Equal(s.Resource, strs{"*"}) || s.Effect != "Allow" || s.Condition != nil {
					t.Errorf("%s %s: %s %v on %v; want exactly ListSecrets and BatchGetSecretValue on \"*\"", name, s.Sid, s.Effect, s.Action, s.Resource)
				}
				continue
			}
			for _, r := range s.Resource {
				if strings.Contains(r, "*") {
					t.Errorf("%s %s: resource %q; every action used supports resource-level permissions", name, s.Sid, r)
				}
			}
		}
	}
	for _, s := range loadPolicy(t, queueFile).Statement {
		if !slices.Equal(s.Resource, []string{"${QueueArn}"}) {
			t.Errorf("%s %s: Resource %v, want exactly the queue", queueFile, s.Sid, s.Resource)
		}
	}
	// In a key policy "*" means "this key" and nothing else.
	for _, s := range loadPolicy(t, keyFile).Statement {
		if !slices.Equal(s.Resource, []string{"*"}) {
			t.Errorf("%s %s: Resource %v, want \"*\" (this key)", keyFile, s.Sid, s.Resource)
		}
	}
}

// placeholders are the ${Name} tokens README.md tells the operator to fill.
var placeholders = map[string]string{
	"Region": "us-east-1", "AccountId": "111122223333",
	"ExpiryQueueArn":              "arn:aws:sqs:us-east-1:111122223333:lwa-expiry",
	"NewSecretQueueArn":           "arn:aws:sqs:us-east-1:111122223333:lwa-new-secret",
	"ExpiryDeadLetterQueueArn":    "arn:aws:sqs:us-east-1:111122223333:lwa-expiry-dlq",
	"NewSecretDeadLetterQueueArn": "arn:aws:sqs:us-east-1:111122223333:lwa-new-secret-dlq",
	"QueueArn":                    "arn:aws:sqs:us-east-1:111122223333:lwa-expiry",
	"SecretArn":                   "arn:aws:secretsmanager:us-east-1:111122223333:secret:lwa-rotator/*",
	"WebhookKeySecretArn":         "arn:aws:secretsmanager:us-east-1:111122223333:secret:lwa-rotator-webhook/*",
	"KmsKeyArn":                   "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
	"DaemonRoleArn":               "arn:aws:iam::111122223333:role/lwa-rotator",
}

var placeholderRE = regexp.MustCompile(`\$\{([A-Za-z]+)\}`)

// TestPlaceholders: every placeholder is documented, and filling them all leaves a valid policy
// with nothing left over (an unfilled ${X} would be read by IAM as a policy variable).
func TestPlaceholders(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{daemonFile, queueFile, keyFile, doctorFile, operatorFile} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range placeholderRE.FindAllStringSubmatch(string(b), -1) {
			if _, ok := placeholders[m[1]]; !ok {
				t.Errorf("%s: unknown placeholder %s", name, m[0])
			}
			if !bytes.Contains(readme, []byte(m[0])) {
				t.Errorf("%s: placeholder %s is not explained in README.md", name, m[0])
			}
		}
		filled := placeholderRE.ReplaceAllStringFunc(string(b), func(s string) string {
			return placeholders[placeholderRE.FindStringSubmatch(s)[1]]
		})
		if strings.Contains(filled, "${") {
			t.Errorf("%s: a ${...} survives filling every placeholder", name)
		}
		if !json.Valid([]byte(filled)) {
			t.Errorf("%s: not valid JSON once filled", name)
		}
	}
}
