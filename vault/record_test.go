package vault_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/vault"
	"github.com/spapi-tools/lwa-rotator/vault/secret"
)

const (
	clientID = "amzn1.application-oa2-client.0123456789abcdef"
	// plain is distinctive so a test can search any output for it.
	plain = "amzn1.oa2-cs.v1.SUPER-SECRET-do-not-print-1234567890"
)

var (
	expiry     = time.Date(2026, 9, 1, 12, 30, 45, 123_000_000, time.UTC)
	prevExpiry = time.Date(2026, 3, 5, 8, 0, 0, 0, time.UTC)
)

func sampleRecord() vault.Record {
	return vault.Record{ClientID: clientID, ClientSecret: secret.New(plain), ExpiresAt: expiry, PreviousExpiresAt: prevExpiry}
}

func sameRecord(a, b vault.Record) bool {
	return a.ClientID == b.ClientID && a.ClientSecret.Equal(b.ClientSecret) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.PreviousExpiresAt.Equal(b.PreviousExpiresAt)
}

func TestEncodeShapes(t *testing.T) {
	t.Parallel()
	berlin := time.FixedZone("CEST", 2*3600)
	tests := []struct {
		name   string
		rec    vault.Record
		format vault.Format
		want   string
	}{
		{"default", sampleRecord(), vault.FormatDefault,
			`{"clientId":"` + clientID + `","clientSecret":"` + plain + `","clientSecretExpiryTime":"2026-09-01T12:30:45.123Z","previousClientSecretExpiryTime":"2026-03-05T08:00:00.000Z"}`},
		{"lambda sample", sampleRecord(), vault.FormatLambdaSample,
			`{"AppClientId":"` + clientID + `","AppClientSecret":"` + plain + `","clientSecretExpiryTime":"2026-09-01T12:30:45.123Z","previousClientSecretExpiryTime":"2026-03-05T08:00:00.000Z"}`},
		{"zero times omitted", vault.Record{ClientID: "c", ClientSecret: secret.New("s")}, vault.FormatDefault,
			`{"clientId":"c","clientSecret":"s"}`},
		{"non-UTC zone and sub-millisecond digits normalised",
			vault.Record{ClientID: "c", ClientSecret: secret.New("s"), ExpiresAt: time.Date(2026, 1, 1, 2, 0, 0, 999_999, berlin)},
			vault.FormatDefault, `{"clientId":"c","clientSecret":"s","clientSecretExpiryTime":"2026-01-01T00:00:00.000Z"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := vault.Encode(tc.rec, tc.format)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if string(got) != tc.want {
				t.Fatalf("Encode =\n%s\nwant\n%s", got, tc.want)
			}
			again, _ := vault.Encode(tc.rec, tc.format)
			if string(again) != string(got) {
				t.Fatalf("Encode is not deterministic")
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		rec    vault.Record
		format vault.Format
	}{
		{"no client id", vault.Record{ClientSecret: secret.New(plain)}, vault.FormatDefault},
		{"no secret", vault.Record{ClientID: clientID}, vault.FormatDefault},
		{"unknown format", sampleRecord(), "yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := vault.Encode(tc.rec, tc.format)
			if err == nil {
				t.Fatal("Encode succeeded")
			}
			if strings.Contains(err.Error(), plain) {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

func TestDecodeRoundTripAndCrossFormat(t *testing.T) {
	t.Parallel()
	formats := []vault.Format{vault.FormatDefault, vault.FormatLambdaSample}
	for _, written := range formats {
		for _, read := range formats {
			t.Run(string(written)+"->"+string(read), func(t *testing.T) {
				t.Parallel()
				b, err := vault.Encode(sampleRecord(), written)
				if err != nil {
					t.Fatalf("Encode: %v", err)
				}
				got, err := vault.Decode(b, read)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !sameRecord(got, sampleRecord()) {
					t.Fatalf("round trip changed the record: %+v", got)
				}
			})
		}
	}
}

func TestDecodeCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		format  vault.Format
		want    vault.Record
		wantErr bool
	}{
		{"operator seeded, no expiry keys", `{"clientId":"c","clientSecret":"` + plain + `"}`, vault.FormatDefault,
			vault.Record{ClientID: "c", ClientSecret: secret.New(plain)}, false},
		{"lambda keys read in default format", `{"AppClientId":"c","AppClientSecret":"` + plain + `"}`, vault.FormatDefault,
			vault.Record{ClientID: "c", ClientSecret: secret.New(plain)}, false},
		{"configured format wins when both present", `{"AppClientId":"a","AppClientSecret":"x","clientId":"c","clientSecret":"` + plain + `"}`,
			vault.FormatDefault, vault.Record{ClientID: "c", ClientSecret: secret.New(plain)}, false},
		{"offset times become UTC", `{"clientId":"c","clientSecret":"s","clientSecretExpiryTime":"2026-09-01T14:30:45.123+02:00"}`,
			vault.FormatDefault, vault.Record{ClientID: "c", ClientSecret: secret.New("s"), ExpiresAt: expiry}, false},
		{"not JSON", `{"clientSecret":"` + plain + `"`, vault.FormatDefault, vault.Record{}, true},
		{"bare secret", plain, vault.FormatDefault, vault.Record{}, true},
		{"secret of wrong type", `{"clientId":"c","clientSecret":12345}`, vault.FormatDefault, vault.Record{}, true},
		{"no client id", `{"clientSecret":"` + plain + `"}`, vault.FormatLambdaSample, vault.Record{}, true},
		{"no secret", `{"clientId":"c"}`, vault.FormatDefault, vault.Record{}, true},
		{"bad time", `{"clientId":"c","clientSecret":"` + plain + `","clientSecretExpiryTime":"tomorrow"}`, vault.FormatDefault, vault.Record{}, true},
		{"unknown format", `{"clientId":"c","clientSecret":"s"}`, "xml", vault.Record{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := vault.Decode([]byte(tc.in), tc.format)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Decode succeeded: %+v", got)
				}
				if strings.Contains(err.Error(), plain) || strings.Contains(err.Error(), "SUPER") {
					t.Fatalf("error quotes the value: %v", err)
				}
				if tc.format != "xml" && !errors.Is(err, vault.ErrMalformed) {
					t.Fatalf("error %v is not ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !sameRecord(got, tc.want) {
				t.Fatalf("Decode = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    vault.Format
		wantErr bool
	}{
		{"", vault.FormatDefault, false},
		{"lwa-rotator", vault.FormatDefault, false},
		{"lambda-sample", vault.FormatLambdaSample, false},
		{"Lambda-Sample", "", true},
	}
	for _, tc := range tests {
		got, err := vault.ParseFormat(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseFormat(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestTokenFor(t *testing.T) {
	t.Parallel()
	legal := regexp.MustCompile(`^[0-9a-f]{32,64}$`)
	ids := []string{"", "0f1e2d3c-aaaa-bbbb-cccc-000000000001", "0f1e2d3c-aaaa-bbbb-cccc-000000000002", strings.Repeat("x", 1000)}
	seen := map[string]string{}
	for _, id := range ids {
		tok := vault.TokenFor(id)
		if !legal.MatchString(tok) {
			t.Errorf("TokenFor(%q) = %q: not 32..64 lowercase hex", id, tok)
		}
		if again := vault.TokenFor(id); again != tok {
			t.Errorf("TokenFor(%q) not stable: %q then %q", id, tok, again)
		}
		if prev, dup := seen[tok]; dup {
			t.Errorf("TokenFor(%q) == TokenFor(%q)", id, prev)
		}
		seen[tok] = id
	}
	// Pinned so a change to the derivation, which would orphan staged versions across an
	// upgrade, cannot slip in unnoticed.
	if got, want := vault.TokenFor("abc"), "2f33c36f44de20a82010ec6388434ad8c1f56ca64a2ca67156bebd2eccea73e0"; got != want {
		t.Errorf("TokenFor(abc) = %q, want %q", got, want)
	}
}
