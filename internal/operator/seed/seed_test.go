package seed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/spapi"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const clientID = "amzn1.application-oa2-client.0123456789abcdef"

var (
	good  = secret.New("amzn1.oa2-cs.v1.goodgoodgoodgoodgoodgoodgoodgood")
	other = secret.New("amzn1.oa2-cs.v1.otherotherotherotherotherother00")
	dead  = secret.New("amzn1.oa2-cs.v1.deaddeaddeaddeaddeaddeaddeaddead")
)

// fakeLWA accepts only the secrets it lists; down makes every call fail without an answer.
type fakeLWA struct {
	valid []secret.Value
	down  bool
}

func (f *fakeLWA) Token(_ context.Context, id string, s secret.Value) (spapi.Token, error) {
	if f.down {
		return spapi.Token{}, &spapi.Error{API: "lwa", Op: "token", Kind: spapi.ErrTransient, Message: "connection refused"}
	}
	for _, v := range f.valid {
		if v.Equal(s) && id == clientID {
			return spapi.Token{AccessToken: secret.New("Atc|x")}, nil
		}
	}
	return spapi.Token{}, &spapi.Error{API: "lwa", Op: "token", StatusCode: 401, Code: "invalid_client", Kind: spapi.ErrInvalidClient}
}

func stored(s secret.Value, f vault.Format, expires string) string {
	r := vault.Record{ClientID: clientID, ClientSecret: s}
	if expires != "" {
		r.ExpiresAt = at(expires)
	}
	b, err := vault.Encode(r, f)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// existing is a secret already in the vault before seed runs.
type existing struct {
	current string // AWSCURRENT's value, "" for a secret without versions
	pending string // an AWSPENDING version's value, "" for none
	tags    map[string]string
}

// The settings of rotator/decision_examples_test.go, whose rows work out the literal times below.
var settings = rotator.Settings{RenewBefore: 30 * 24 * time.Hour, AwaitDeadline: time.Hour, RetryMin: time.Minute, RetryMax: time.Hour,
	ProbeEvery: 24 * time.Hour, CanaryEvery: 7 * 24 * time.Hour, RotateInterval: time.Minute}

var now = at("2026-06-01T12:00:00Z")

func TestSeed(t *testing.T) {
	t.Parallel()
	inFlight := map[string]string{vault.TagRequestedAt: "2026-06-01T11:30:00Z", vault.TagLastCallAt: "2026-06-01T11:30:00Z", vault.TagRotationID: "r1"}
	tests := []struct {
		name    string
		exists  *existing
		lwa     fakeLWA
		value   secret.Value
		expires string // --expires-at
		force   bool
		format  vault.Format
		want    Outcome
		wantErr error
		// errSays is a substring of the refusal; phase/reason/next the decision reported.
		errSays             string
		phase, reason, next string
	}{
		{name: "absent: created with the key", lwa: fakeLWA{valid: []secret.Value{good}}, value: good, want: Created,
			phase: "idle", reason: "expiry-unknown"},
		{name: "absent, with its expiry: the first rotation is planned", lwa: fakeLWA{valid: []secret.Value{good}}, value: good, expires: "2026-09-01T12:00:00Z",
			want: Created, phase: "idle", reason: "renewal-scheduled", next: "2026-08-02T12:00:00Z"},
		{name: "absent, expiring within renewBefore: due at once", lwa: fakeLWA{valid: []secret.Value{good}}, value: good, expires: "2026-06-20T00:00:00Z",
			want: Created, phase: "due", reason: "renewal-due", next: "2026-06-01T12:00:00Z"},
		{name: "absent, lambda-sample shape", lwa: fakeLWA{valid: []secret.Value{good}}, value: good, format: vault.FormatLambdaSample, want: Created,
			phase: "idle", reason: "expiry-unknown"},
		{name: "exists without a value", exists: &existing{}, lwa: fakeLWA{valid: []secret.Value{good}}, value: good, want: Stored,
			phase: "idle", reason: "expiry-unknown"},
		{name: "same secret already current", exists: &existing{current: stored(good, vault.FormatDefault, "2026-09-01T12:00:00Z")},
			lwa: fakeLWA{valid: []secret.Value{good}}, value: good, want: Unchanged, phase: "idle", reason: "renewal-scheduled", next: "2026-08-02T12:00:00Z"},
		{name: "a different working secret", exists: &existing{current: stored(other, vault.FormatDefault, "")}, lwa: fakeLWA{valid: []secret.Value{good, other}},
			value: good, wantErr: ErrWouldOverwrite, errSays: "still mints an LWA token"},
		{name: "a different working secret, forced", exists: &existing{current: stored(other, vault.FormatDefault, "")}, lwa: fakeLWA{valid: []secret.Value{good, other}},
			value: good, force: true, want: Stored, phase: "idle", reason: "expiry-unknown"},
		{name: "a different dead secret is replaced", exists: &existing{current: stored(dead, vault.FormatDefault, "")}, lwa: fakeLWA{valid: []secret.Value{good}},
			value: good, want: Stored, phase: "idle", reason: "expiry-unknown"},
		{name: "an unreadable stored value is replaced", exists: &existing{current: "not json"}, lwa: fakeLWA{valid: []secret.Value{good}}, value: good, want: Stored,
			phase: "idle", reason: "expiry-unknown"},
		{name: "LWA rejects the pasted secret", lwa: fakeLWA{}, value: good, wantErr: ErrRejected},
		{name: "LWA unreachable", lwa: fakeLWA{down: true}, value: good, wantErr: spapi.ErrTransient},
		{name: "rotation in flight", exists: &existing{current: stored(dead, vault.FormatDefault, "2026-09-01T12:00:00Z"), tags: inFlight},
			lwa: fakeLWA{valid: []secret.Value{good}}, value: good, wantErr: ErrWouldOverwrite,
			errSays: "in flight on secret lwa/main since 2026-06-01T11:30:00Z (phase requested, the daemon acts next at 2026-06-01T12:30:31.581112375Z)"},
		{name: "rotation in flight, forced", exists: &existing{current: stored(dead, vault.FormatDefault, "2026-09-01T12:00:00Z"), tags: inFlight},
			lwa: fakeLWA{valid: []secret.Value{good}}, value: good, force: true, want: Stored, phase: "requested", reason: "awaiting-secret",
			next: "2026-06-01T12:30:31.581112375Z"},
		{name: "a new secret staged", exists: &existing{current: stored(dead, vault.FormatDefault, "2026-09-01T12:00:00Z"), pending: stored(other, vault.FormatDefault, "2026-11-28T12:00:00Z")},
			lwa: fakeLWA{valid: []secret.Value{good}}, value: good, wantErr: ErrWouldOverwrite, errSays: "(phase pending, the daemon acts next at 2026-06-01T12:00:02.5Z)"},
		{name: "a staged version the daemon cannot read", exists: &existing{current: stored(other, vault.FormatDefault, "2026-09-01T12:00:00Z"), pending: "not json"},
			lwa: fakeLWA{valid: []secret.Value{good, other}}, value: good, wantErr: ErrWouldOverwrite, errSays: "cannot be read as the daemon reads it"},
		{name: "a current version the daemon cannot read, with one staged, forced", exists: &existing{current: "not json", pending: stored(other, vault.FormatDefault, "2026-11-28T12:00:00Z")},
			lwa: fakeLWA{valid: []secret.Value{good}}, value: good, force: true, want: Stored, phase: "pending", reason: "new-secret-staged", next: "2026-06-01T12:00:02.5Z"},
		// The latest call's secret was lost: seeding the working one is the remedy, not a race.
		{name: "a lost secret owed", exists: &existing{current: stored(dead, vault.FormatDefault, "2026-09-01T12:00:00Z"),
			tags: map[string]string{vault.TagLastCallAt: "2026-06-01T10:00:00Z", vault.TagAttempts: "1", vault.TagNextAttemptAt: "2026-06-01T12:10:00Z"}},
			lwa: fakeLWA{valid: []secret.Value{good}}, value: good, want: Stored, phase: "backing_off", reason: "secret-owed", next: "2026-06-01T12:10:00Z"},
		{name: "wrong shape", lwa: fakeLWA{valid: []secret.Value{good}}, value: secret.New("hunter2hunter2hunter2"), wantErr: ErrShape},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			sm := fakesm.New(fakesm.Options{})
			var before map[string][]string
			if e := tc.exists; e != nil {
				in := &secretsmanager.CreateSecretInput{Name: aws.String("lwa/main"), KmsKeyId: aws.String("arn:aws:kms:us-east-1:1:key/k")}
				for k, v := range e.tags {
					in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
				}
				if e.current != "" {
					in.SecretString = aws.String(e.current)
				}
				if _, err := sm.CreateSecret(ctx, in); err != nil {
					t.Fatal(err)
				}
				if e.pending != "" {
					if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("lwa/main"),
						SecretString: aws.String(e.pending), VersionStages: []string{vault.StagePending}}); err != nil {
						t.Fatal(err)
					}
				}
				before = sm.Versions("lwa/main")
			}
			sm.ResetCalls()
			lwa := tc.lwa
			format := tc.format
			if format == "" {
				format = vault.FormatDefault
			}
			var expires time.Time
			if tc.expires != "" {
				expires = at(tc.expires)
			}
			o := Options{App: rotator.App{Name: "main", ClientID: clientID, SecretID: "lwa/main"}, Settings: settings,
				KMSKeyID: "arn:aws:kms:us-east-1:1:key/k", Format: format, ExpiresAt: expires, Force: tc.force}
			d := Deps{SM: sm, Vault: &vault.Store{SM: sm, Format: format}, LWA: &lwa, Clock: fakeclock.New(now)}
			res, err := Seed(ctx, d, o, tc.value)
			writes := sm.Count(fakesm.OpCreateSecret) + sm.Count(fakesm.OpPutSecretValue)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(fmt.Sprint(err), tc.errSays) {
					t.Fatalf("Seed = %+v, %v; want %v saying %q", res, err, tc.wantErr, tc.errSays)
				}
				if writes != 0 {
					t.Fatal("a refused seed wrote to the vault")
				}
				if strings.Contains(err.Error(), strings.TrimPrefix(tc.value.Reveal(), "amzn1.oa2-cs.v1.")) {
					t.Fatal("the error repeats the secret")
				}
				return
			}
			if err != nil {
				t.Fatalf("Seed: %v", err)
			}
			if res.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s", res.Outcome, tc.want)
			}
			if dec := res.Decision; res.DecisionErr != nil || dec.Phase.String() != tc.phase || string(dec.Reason) != tc.reason || stamp(dec.NextActionAt) != tc.next {
				t.Errorf("decision: phase %s, reason %q, next %q (read back: %v); want %s, %q, %q", dec.Phase, dec.Reason, stamp(dec.NextActionAt),
					res.DecisionErr, tc.phase, tc.reason, tc.next)
			}
			versions := sm.Versions("lwa/main")
			if tc.want == Unchanged {
				if writes != 0 || fmt.Sprint(versions) != fmt.Sprint(before) {
					t.Fatal("an unchanged seed wrote")
				}
				return
			}
			if res.ARN == "" || res.VersionID == "" || vault.CurrentVersion(versions) != res.VersionID {
				t.Fatalf("result %+v; AWSCURRENT is %s", res, vault.CurrentVersion(versions))
			}
			if res.Replaced != "" && !slices.Contains(versions[res.Replaced], vault.StagePrevious) {
				t.Errorf("the replaced version %s is not AWSPREVIOUS: %v", res.Replaced, versions)
			}
			body, _ := sm.Value("lwa/main", res.VersionID)
			if body != stored(good, format, tc.expires) {
				t.Fatalf("stored shape is not the vault's %s shape", format)
			}
			// One read back after the write, with the daemon's read.
			if tc.exists == nil && sm.Count(fakesm.OpDescribeSecret) != 2 {
				t.Errorf("%d DescribeSecret for a created secret, want 2 (the existence check and the read back)", sm.Count(fakesm.OpDescribeSecret))
			}
		})
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func TestCheckShapeSaysWhatIsWrongWithoutTheValue(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "empty"},
		{"amzn1.application-oa2-client.0123456789abcdef", "client id"},
		{`{"clientSecret":"amzn1.oa2-cs.v1.abcabcabcabcabcabc"}`, "JSON"},
		{"s3cr3tvaluewithoutprefix0000", "does not start with amzn1.oa2-cs.v1."},
		{"amzn1.oa2-cs.v1.abcdabcd abcdabcdabcd", "whitespace"},
		{"amzn1.oa2-cs.v1.abc", "too short"},
		{"amzn1.oa2-cs.v1.0123456789abcdef0123456789abcdef", ""},
	}
	for _, tc := range tests {
		err := CheckShape(secret.New(tc.in))
		if tc.want == "" {
			if err != nil {
				t.Errorf("CheckShape(good) = %v", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckShape = %v, want it to say %q", err, tc.want)
			continue
		}
		if len(tc.in) > 8 && strings.Contains(err.Error(), tc.in[len(tc.in)-8:]) {
			t.Errorf("CheckShape repeats the value: %v", err)
		}
	}
}
