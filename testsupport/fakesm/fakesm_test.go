package fakesm_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
)

func create(t *testing.T, f *fakesm.SM, name string, in *sm.CreateSecretInput) *sm.CreateSecretOutput {
	t.Helper()
	if in == nil {
		in = &sm.CreateSecretInput{SecretString: aws.String("v0")}
	}
	in.Name = aws.String(name)
	out, err := f.CreateSecret(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateSecret %s: %v", name, err)
	}
	return out
}

func TestFaults(t *testing.T) {
	t.Parallel()
	boom := &types.InternalServiceError{Message: aws.String("injected")}
	tests := []struct {
		name      string
		fault     fakesm.Fault
		wantErr   bool
		wantWrite bool
	}{
		{"no fault", fakesm.Fault{}, false, true},
		{"fails before the effect", fakesm.Fault{Err: boom}, true, false},
		{"ambiguous: applied, then fails", fakesm.Fault{Err: boom, Applied: true}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen []string
			var mu sync.Mutex
			f := fakesm.New(fakesm.Options{Fault: func(op, id string) fakesm.Fault {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, op+" "+id)
				if op == fakesm.OpPutSecretValue {
					return tc.fault
				}
				return fakesm.Fault{}
			}})
			create(t, f, "s", nil)
			_, err := f.PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: aws.String("s"),
				ClientRequestToken: aws.String(tok(1)), SecretString: aws.String("v1")})
			var ise *types.InternalServiceError
			if tc.wantErr != errors.As(err, &ise) {
				t.Fatalf("PutSecretValue = %v, want the injected error: %v", err, tc.wantErr)
			}
			if _, wrote := f.Value("s", tok(1)); wrote != tc.wantWrite {
				t.Errorf("version written = %v, want %v", wrote, tc.wantWrite)
			}
			if want := []string{"CreateSecret s", "PutSecretValue s"}; !slices.Equal(seen, want) {
				t.Errorf("fault hook saw %v, want %v", seen, want)
			}
			if n := f.Count(fakesm.OpPutSecretValue); n != 1 {
				t.Errorf("%d puts counted, want 1 (faulted calls count too)", n)
			}
		})
	}
}

// TestFaultHookMayCallTheModel: the hook runs without the lock, so a test can stage a racing
// writer from inside it.
func TestFaultHookMayCallTheModel(t *testing.T) {
	t.Parallel()
	var f *fakesm.SM
	var raced atomic.Bool
	f = fakesm.New(fakesm.Options{Fault: func(op, id string) fakesm.Fault {
		// The racer's own put comes through here too; only the first put races.
		if op == fakesm.OpPutSecretValue && raced.CompareAndSwap(false, true) {
			func() {
				if _, err := f.PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: aws.String(id),
					ClientRequestToken: aws.String(tok(1)), SecretString: aws.String("racer"), VersionStages: []string{"AWSPENDING"}}); err != nil {
					t.Errorf("racing put: %v", err)
				}
			}()
		}
		return fakesm.Fault{}
	}})
	create(t, f, "s", nil)
	_, err := f.PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: aws.String("s"),
		ClientRequestToken: aws.String(tok(1)), SecretString: aws.String("mine"), VersionStages: []string{"AWSPENDING"}})
	var exists *types.ResourceExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("put after the racer = %v, want ResourceExistsException", err)
	}
	if v, _ := f.Value("s", tok(1)); v != "racer" {
		t.Errorf("value = %q, want the racer's", v)
	}
}

func TestCallsAndReset(t *testing.T) {
	t.Parallel()
	f := fakesm.New(fakesm.Options{})
	create(t, f, "s", nil)
	ctx := context.Background()
	for range 3 {
		_, _ = f.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("s")})
	}
	_, _ = f.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("missing")})
	want := map[string]int{"CreateSecret": 1, "DescribeSecret": 3, "GetSecretValue": 1}
	if got := f.Calls(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Calls = %v, want %v", got, want)
	}
	f.ResetCalls()
	if got := f.Calls(); len(got) != 0 {
		t.Fatalf("Calls after ResetCalls = %v", got)
	}
	if f.Versions("s") == nil {
		t.Fatal("ResetCalls dropped the secrets")
	}
}

func TestDeterministicIDsDatesAndKey(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC)
	clk := fakeclock.New(at)
	run := func() (string, string, *sm.DescribeSecretOutput) {
		f := fakesm.New(fakesm.Options{Clock: clk})
		c := create(t, f, "s", &sm.CreateSecretInput{SecretString: aws.String("v0"), KmsKeyId: aws.String("alias/lwa")})
		p, err := f.PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: aws.String("s"), SecretString: aws.String("v1")})
		if err != nil {
			t.Fatal(err)
		}
		d, err := f.DescribeSecret(context.Background(), &sm.DescribeSecretInput{SecretId: c.ARN})
		if err != nil {
			t.Fatalf("DescribeSecret by ARN: %v", err)
		}
		return aws.ToString(c.VersionId), aws.ToString(p.VersionId), d
	}
	a0, a1, d := run()
	b0, b1, _ := run()
	if a0 != b0 || a1 != b1 || a0 == a1 {
		t.Errorf("version ids %s %s then %s %s, want the same distinct ids each run", a0, a1, b0, b1)
	}
	if aws.ToString(d.KmsKeyId) != "alias/lwa" {
		t.Errorf("KmsKeyId = %q", aws.ToString(d.KmsKeyId))
	}
	if d.CreatedDate == nil || !d.CreatedDate.Equal(at) {
		t.Errorf("CreatedDate = %v, want the clock's %v", d.CreatedDate, at)
	}
	noClock := fakesm.New(fakesm.Options{})
	create(t, noClock, "s", nil)
	if d, _ := noClock.DescribeSecret(context.Background(), &sm.DescribeSecretInput{SecretId: aws.String("s")}); d.CreatedDate != nil || d.KmsKeyId != nil {
		t.Errorf("without a clock or key: CreatedDate %v KmsKeyId %v, want both unset", d.CreatedDate, d.KmsKeyId)
	}
}

func TestInspectionReturnsCopies(t *testing.T) {
	t.Parallel()
	f := fakesm.New(fakesm.Options{})
	create(t, f, "s", &sm.CreateSecretInput{SecretString: aws.String("v0"), Tags: []types.Tag{tag("a", "1")}})
	f.Versions("s")[tok(0)] = []string{"MANGLED"}
	for id := range f.Versions("s") {
		f.Versions("s")[id][0] = "MANGLED"
	}
	f.Tags("s")["a"] = "MANGLED"
	for _, st := range f.Versions("s") {
		if !slices.Equal(st, []string{"AWSCURRENT"}) {
			t.Fatalf("Versions leaked its state: %v", st)
		}
	}
	if f.Tags("s")["a"] != "1" {
		t.Fatal("Tags leaked its state")
	}
	if f.Versions("missing") != nil || f.Tags("missing") != nil {
		t.Fatal("inspection of a missing secret is not nil")
	}
}

func TestListSecretsPaging(t *testing.T) {
	t.Parallel()
	f := fakesm.New(fakesm.Options{})
	ctx := context.Background()
	const n = 230
	for i := range n {
		create(t, f, fmt.Sprintf("app/%03d", i), &sm.CreateSecretInput{SecretString: aws.String("v"), Tags: []types.Tag{tag("team", "t")}})
	}
	// A deprecated version on the first secret must not be listed.
	if _, err := f.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("app/000"), SecretString: aws.String("p"),
		ClientRequestToken: aws.String(tok(5)), VersionStages: []string{"X"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String("app/000"),
		VersionStage: aws.String("X"), RemoveFromVersionId: aws.String(tok(5))}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		max       *int32
		wantPages []int
	}{
		{"default page of 100", nil, []int{100, 100, 30}},
		{"pages of 64", aws.Int32(64), []int{64, 64, 64, 38}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var pages []int
			var names []string
			var token *string
			for {
				out, err := f.ListSecrets(ctx, &sm.ListSecretsInput{MaxResults: tc.max, NextToken: token})
				if err != nil {
					t.Fatal(err)
				}
				pages = append(pages, len(out.SecretList))
				for _, e := range out.SecretList {
					names = append(names, aws.ToString(e.Name))
					if len(e.Tags) != 1 || len(e.SecretVersionsToStages) != 1 {
						t.Fatalf("%s: tags %v versions %v, want one tag and one listed version", aws.ToString(e.Name), e.Tags, e.SecretVersionsToStages)
					}
				}
				if token = out.NextToken; token == nil {
					break
				}
			}
			if !slices.Equal(pages, tc.wantPages) || len(names) != n || len(slices.Compact(slices.Sorted(slices.Values(names)))) != n {
				t.Fatalf("pages %v, %d names; want %v and every secret once", pages, len(names), tc.wantPages)
			}
		})
	}
	refusals := []struct {
		name string
		in   *sm.ListSecretsInput
		want string
	}{
		{"page too large", &sm.ListSecretsInput{MaxResults: aws.Int32(101)}, "ValidationException"},
		{"forged token", &sm.ListSecretsInput{NextToken: aws.String("nope")}, "InvalidNextTokenException"},
	}
	for _, r := range refusals {
		if _, err := f.ListSecrets(ctx, r.in); errCode(err) != r.want {
			t.Errorf("%s: %v, want %s", r.name, err, r.want)
		}
	}
	out, err := f.ListSecrets(ctx, &sm.ListSecretsInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"app/01"}}}})
	if err != nil || len(out.SecretList) != 10 {
		t.Fatalf("name filter: %d secrets, %v; want 10", len(out.SecretList), err)
	}
}

func TestBatchGetSecretValue(t *testing.T) {
	t.Parallel()
	f := fakesm.New(fakesm.Options{})
	ctx := context.Background()
	var ids []string
	for i := range 25 {
		name := fmt.Sprintf("app/%02d", i)
		create(t, f, name, &sm.CreateSecretInput{SecretString: aws.String("value-" + name)})
		ids = append(ids, name)
	}
	create(t, f, "empty", &sm.CreateSecretInput{})

	out, err := f.BatchGetSecretValue(ctx, &sm.BatchGetSecretValueInput{SecretIdList: append(slices.Clone(ids[:18]), "missing", "empty")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SecretValues) != 18 || len(out.Errors) != 2 {
		t.Fatalf("%d values, %d errors; want 18 and 2", len(out.SecretValues), len(out.Errors))
	}
	for _, v := range out.SecretValues {
		if aws.ToString(v.SecretString) != "value-"+aws.ToString(v.Name) || !slices.Equal(v.VersionStages, []string{"AWSCURRENT"}) {
			t.Errorf("%s: %q %v", aws.ToString(v.Name), aws.ToString(v.SecretString), v.VersionStages)
		}
	}
	for _, e := range out.Errors {
		if aws.ToString(e.ErrorCode) != "ResourceNotFoundException" {
			t.Errorf("error for %s: %s", aws.ToString(e.SecretId), aws.ToString(e.ErrorCode))
		}
	}
	if _, err := f.BatchGetSecretValue(ctx, &sm.BatchGetSecretValueInput{SecretIdList: ids[:21]}); errCode(err) != "ValidationException" {
		t.Errorf("21 ids: %v, want ValidationException", err)
	}
	if _, err := f.BatchGetSecretValue(ctx, &sm.BatchGetSecretValueInput{SecretIdList: ids[:2], MaxResults: aws.Int32(2)}); errCode(err) != "InvalidParameterException" {
		t.Errorf("ids with MaxResults: %v, want InvalidParameterException", err)
	}
	// The Filters form is not modelled: refused, never answered wrongly.
	if _, err := f.BatchGetSecretValue(ctx, &sm.BatchGetSecretValueInput{
		Filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"app/"}}}}); errCode(err) != "InvalidParameterException" {
		t.Errorf("a filtered batch: %v, want InvalidParameterException", err)
	}
}

// TestConcurrentUse runs writers on one secret at once under -race; AWSCURRENT ends on exactly
// one version and every put is kept.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	f := fakesm.New(fakesm.Options{})
	create(t, f, "s", nil)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			_, _ = f.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String("s"), ClientRequestToken: aws.String(tok(100 + i)),
				SecretString: aws.String("v")})
			_, _ = f.TagResource(ctx, &sm.TagResourceInput{SecretId: aws.String("s"), Tags: []types.Tag{tag(fmt.Sprintf("k%d", i), "v")}})
			_, _ = f.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("s")})
		}()
	}
	wg.Wait()
	holders := 0
	for _, st := range f.Versions("s") {
		if slices.Contains(st, "AWSCURRENT") {
			holders++
		}
	}
	if v := f.Versions("s"); holders != 1 || len(v) != 17 || len(f.Tags("s")) != 16 {
		t.Fatalf("%d AWSCURRENT holders, %d versions, %d tags; want 1, 17, 16", holders, len(v), len(f.Tags("s")))
	}
}

func TestValueChecks(t *testing.T) {
	t.Parallel()
	f := fakesm.New(fakesm.Options{})
	create(t, f, "s", nil)
	ctx := context.Background()
	tests := []struct {
		name string
		in   *sm.PutSecretValueInput
		want string
	}{
		{"short token", &sm.PutSecretValueInput{ClientRequestToken: aws.String("short"), SecretString: aws.String("v")}, "ValidationException"},
		{"no value", &sm.PutSecretValueInput{ClientRequestToken: aws.String(tok(1))}, "InvalidParameterException"},
		{"both values", &sm.PutSecretValueInput{ClientRequestToken: aws.String(tok(1)), SecretString: aws.String("v"), SecretBinary: []byte("v")}, "InvalidParameterException"},
	}
	for _, tc := range tests {
		tc.in.SecretId = aws.String("s")
		if _, err := f.PutSecretValue(ctx, tc.in); errCode(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	if len(f.Versions("s")) != 1 {
		t.Errorf("refused puts left versions: %v", f.Versions("s"))
	}
}

// TestFirstVersionIsCurrent: a secret created without a value gets AWSCURRENT on its first put,
// whatever labels the put names.
func TestFirstVersionIsCurrent(t *testing.T) {
	t.Parallel()
	f := fakesm.New(fakesm.Options{})
	create(t, f, "s", &sm.CreateSecretInput{})
	if _, err := f.GetSecretValue(context.Background(), &sm.GetSecretValueInput{SecretId: aws.String("s")}); errCode(err) != "ResourceNotFoundException" {
		t.Fatalf("reading a secret without a value = %v, want ResourceNotFoundException", err)
	}
	if _, err := f.PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: aws.String("s"), ClientRequestToken: aws.String(tok(1)),
		SecretString: aws.String("v1"), VersionStages: []string{"AWSPENDING"}}); err != nil {
		t.Fatal(err)
	}
	if st := f.Versions("s")[tok(1)]; !slices.Equal(st, []string{"AWSPENDING", "AWSCURRENT"}) {
		t.Fatalf("first version's labels = %v, want AWSPENDING and AWSCURRENT", st)
	}
}

// TestListFiltersFollowTheAPI: the Filter type's limits are refused as the service refuses them,
// and a tag-key filter lists only the secrets carrying a key with that prefix.
func TestListFiltersFollowTheAPI(t *testing.T) {
	t.Parallel()
	f := fakesm.New(fakesm.Options{})
	ctx := context.Background()
	create(t, f, "a", &sm.CreateSecretInput{SecretString: aws.String("v"), Tags: []types.Tag{tag("lwa-rotator:request-at", "x")}})
	create(t, f, "b", &sm.CreateSecretInput{SecretString: aws.String("v"), Tags: []types.Tag{tag("team", "t")}})
	name := func(vals ...string) []types.Filter {
		return []types.Filter{{Key: types.FilterNameStringTypeName, Values: vals}}
	}
	eleven := make([]types.Filter, 11)
	for i := range eleven {
		eleven[i] = name("a")[0]
	}
	refusals := []struct {
		name    string
		filters []types.Filter
		want    string
	}{
		{"no value", name(), "ValidationException"},
		{"eleven values", name("a", "a", "a", "a", "a", "a", "a", "a", "a", "a", "a"), "ValidationException"},
		{"eleven filters", eleven, "ValidationException"},
		{"value too long", name(strings.Repeat("a", 513)), "ValidationException"},
		{"character outside the pattern", name("a*"), "ValidationException"},
		{"a key not modelled", []types.Filter{{Key: types.FilterNameStringTypeDescription, Values: []string{"a"}}}, "InvalidParameterException"},
	}
	for _, r := range refusals {
		if _, err := f.ListSecrets(ctx, &sm.ListSecretsInput{Filters: r.filters}); errCode(err) != r.want {
			t.Errorf("%s: %v, want %s", r.name, err, r.want)
		}
	}
	out, err := f.ListSecrets(ctx, &sm.ListSecretsInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{"lwa-rotator:request"}}}})
	if err != nil || len(out.SecretList) != 1 || aws.ToString(out.SecretList[0].Name) != "a" {
		t.Fatalf("tag-key filter: %v, %v; want only secret a", out, err)
	}
}

// TestPartialARNNamesTheSecret: an ARN without the six random characters finds the secret, as
// the service documents for SecretId.
func TestPartialARNNamesTheSecret(t *testing.T) {
	t.Parallel()
	f := fakesm.New(fakesm.Options{})
	ctx := context.Background()
	out, err := f.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("lwa/app"), SecretString: aws.String("v")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ARN)
	for _, id := range []string{arn, arn[:len(arn)-7], "lwa/app"} {
		if d, err := f.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(id)}); err != nil || aws.ToString(d.ARN) != arn {
			t.Errorf("DescribeSecret(%s) = %v, %v", id, d, err)
		}
	}
	if _, err := f.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(arn[:len(arn)-8])}); errCode(err) != "ResourceNotFoundException" {
		t.Errorf("a truncated ARN: %v, want ResourceNotFoundException", err)
	}
}
