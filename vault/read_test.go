package vault_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/spapi-tools/lwa-rotator/testsupport/fakesm"
	"github.com/spapi-tools/lwa-rotator/vault"
)

func TestReadErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.Create(ctx, "empty", "", vault.Record{}); err == nil {
		t.Fatal("Create accepted an empty record")
	}
	if _, err := f.fake.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("empty")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"current of missing secret", func() error { _, err := f.store.Current(ctx, "nope"); return err }, vault.ErrNotFound},
		{"current of secret without value", func() error { _, err := f.store.Current(ctx, "empty"); return err }, vault.ErrNoCurrent},
		{"no previous yet", func() error { _, err := f.store.Previous(ctx, secretName); return err }, vault.ErrNotFound},
		{"pending of missing secret", func() error { _, _, err := f.store.Pending(ctx, "nope"); return err }, vault.ErrNotFound},
		{"stage into missing secret", func() error {
			return f.store.StageOn(ctx, vault.Snapshot{SecretID: "nope"}, vault.TokenFor("x"), newRecord())
		}, vault.ErrNotFound},
		{"promote unknown version", func() error { return f.store.PromoteOn(ctx, f.read(t), vault.TokenFor("never")) }, vault.ErrNotFound},
		{"create existing", func() error { _, err := f.store.Create(ctx, secretName, "", sampleRecord()); return err }, nil},
	}
	for _, tc := range tests {
		err := tc.call()
		noLeak(t, err)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	var exists *types.ResourceExistsException
	if _, err := f.store.Create(ctx, secretName, "", sampleRecord()); !errors.As(err, &exists) {
		t.Errorf("Create of an existing name: %v does not keep the SDK error", err)
	}
	if _, ok, err := f.store.Pending(ctx, secretName); ok || err != nil {
		t.Errorf("Pending with nothing staged = %v, %v", ok, err)
	}
}

func TestMalformedStoredValueDoesNotLeak(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// An operator's hand edit, put as the new AWSCURRENT.
	if _, err := f.fake.PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: aws.String(secretName),
		ClientRequestToken: aws.String("manual-edit-000000000000000000000000"), SecretString: aws.String(`{"clientId":"c","clientSecret":"` + plain)}); err != nil {
		t.Fatal(err)
	}
	_, err := f.store.Current(context.Background(), secretName)
	noLeak(t, err)
	if !errors.Is(err, vault.ErrMalformed) || !strings.Contains(err.Error(), "manual-edit") {
		t.Fatalf("Current = %v, want ErrMalformed naming the version", err)
	}
}

func TestLambdaSampleFormatStore(t *testing.T) {
	t.Parallel()
	fake := fakesm.New(fakesm.Options{})
	s := &vault.Store{SM: fake, Format: vault.FormatLambdaSample}
	ctx := context.Background()
	if _, err := s.Create(ctx, secretName, "", sampleRecord()); err != nil {
		t.Fatalf("Create: %v", err)
	}
	cur, err := s.Current(ctx, secretName)
	if err != nil || !sameRecord(cur.Record, sampleRecord()) {
		t.Fatalf("Current = %+v, %v", cur.Record, err)
	}
	if v, _ := fake.Value(secretName, cur.ID); !strings.HasPrefix(v, `{"AppClientId":`) {
		t.Fatalf("stored shape is not the lambda sample's: starts %.16s", v)
	}
}
