package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestRequesterIsALegalTagValue(t *testing.T) {
	t.Parallel()
	who := requester()
	if who == "" || len(who) > 128 || !regexp.MustCompile(`^[A-Za-z0-9_.:/=+\-@]+$`).MatchString(who) {
		t.Fatalf("requester() = %q: not a legal, bounded tag value", who)
	}
}

func TestReadSecretFromAPipe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want, wantErr string
	}{
		{"trailing newline trimmed", "amzn1.oa2-cs.v1.abc\r\n", "amzn1.oa2-cs.v1.abc", ""},
		{"surrounding spaces trimmed", "  amzn1.oa2-cs.v1.abc  ", "amzn1.oa2-cs.v1.abc", ""},
		{"too long", strings.Repeat("a", maxSecretInput+1), "", "more than 4096 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			go func() {
				_, _ = w.WriteString(tc.in)
				w.Close()
			}()
			var prompt bytes.Buffer
			v, err := readSecret(r, &prompt, "app")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readSecret = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || v.Reveal() != tc.want {
				t.Fatalf("readSecret = %v (len %d), want the trimmed value", err, len(v.Reveal()))
			}
			if prompt.Len() != 0 {
				t.Errorf("prompted although stdin is a pipe: %q", prompt.String())
			}
		})
	}
}

func TestOperatorCommandsRefuseBadUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"rotate"},
		{"seed"},
		{"seed", "--app", "a", "amzn1.oa2-cs.v1.positional-secret"},
		{"seed", "--app", "a", "--expires-at", "tomorrow"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, &out, &errb)
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
		if strings.Contains(out.String()+errb.String(), "positional-secret") {
			t.Errorf("%v: the output repeats the argument", args)
		}
	}
}
