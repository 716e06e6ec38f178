package secret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const plain = "amzn1.oa2-cs.v1.supersecretvalue0123456789"

func TestEveryFormatterRedacts(t *testing.T) {
	t.Parallel()
	s := New(plain)
	wrapper := struct {
		Name   string
		Secret Value
		Ptr    *Value
	}{"app", s, &s}
	js, err := json.Marshal(wrapper)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	cases := map[string]string{
		"String":   s.String(),
		"%v":       fmt.Sprintf("%v", s),
		"%s":       fmt.Sprintf("%s", s),
		"%q":       fmt.Sprintf("%q", s),
		"%x":       fmt.Sprintf("%x", s),
		"%X":       fmt.Sprintf("%X", s),
		"%#v":      fmt.Sprintf("%#v", s),
		"%+v":      fmt.Sprintf("%+v", wrapper),
		"%#v-wrap": fmt.Sprintf("%#v", wrapper),
		"%v-ptr":   fmt.Sprintf("%v", &s),
		"%d":       fmt.Sprintf("%d", s),
		"json":     string(js),
		"error":    fmt.Errorf("verifying %v: %w", s, errors.New("boom")).Error(),
	}
	for name, out := range cases {
		if strings.Contains(out, plain) || strings.Contains(out, "supersecret") {
			t.Errorf("%s leaked the secret: %s", name, out)
		}
		if !strings.Contains(out, Redacted) && name != "String" {
			t.Errorf("%s = %q, want the redaction marker", name, out)
		}
	}
	if s.Reveal() != plain {
		t.Fatalf("Reveal lost the value")
	}
}

func TestZapRedacts(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.DebugLevel))
	s := New(plain)
	log.Info("fields",
		zap.Any("any", s),
		zap.Stringer("stringer", s),
		zap.Reflect("reflect", s),
		zap.Object("object", s),
		zap.Any("struct", struct{ S Value }{s}),
	)
	log.Sugar().Infow("sugar", "s", s)
	log.Sugar().Infof("printf %v %s %q", s, s, s)
	_ = log.Sync()
	out := buf.String()
	if strings.Contains(out, "supersecret") {
		t.Fatalf("zap output leaked the secret: %s", out)
	}
	if n := strings.Count(out, Redacted); n < 9 {
		t.Fatalf("expected the marker at least 9 times, got %d: %s", n, out)
	}
}

func TestUnmarshalJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"string", `"` + plain + `"`, plain, false},
		{"empty", `""`, "", false},
		{"number", `42`, "", true},
		{"object", `{"a":"` + plain + `"}`, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v Value
			err := json.Unmarshal([]byte(tc.in), &v)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "supersecret") {
				t.Fatalf("error leaked input: %v", err)
			}
			if v.Reveal() != tc.want {
				t.Fatalf("got %q, want %q", v.Reveal(), tc.want)
			}
		})
	}
}

func TestEqualAndZero(t *testing.T) {
	t.Parallel()
	if !New("a").Equal(New("a")) || New("a").Equal(New("b")) {
		t.Fatal("Equal is wrong")
	}
	if !(Value{}).IsZero() || New("a").IsZero() {
		t.Fatal("IsZero is wrong")
	}
}
