package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/rotator/window"
	"github.com/spapi-tools/lwa-rotator/testsupport/fakeclock"
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

// rotate --in-window says when the window opens, then returns that opening once the clock
// reaches it; with no window it asks at once.
func TestRotateInWindowSaysWhenItAsks(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 6, 1, 12, 0, 30, 0, time.UTC) // a Monday
	w, problems := window.Parse("UTC", []string{"Mon 12:02-14:02"}, 7*24*time.Hour)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	tests := []struct {
		name   string
		w      window.Schedule
		opened string // "" when nothing was waited for
		say    string
	}{
		{"a window", w, "2026-06-01T12:02:00Z",
			"main-app: the rotation window (Mon 12:02-14:02 UTC) opens at 2026-06-01T12:02:00Z (in 1m30s); the request is written then (Ctrl-C cancels)\n"},
		{"no window", window.Schedule{}, "", "main-app: no rotation window is configured: requesting now\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			clk := fakeclock.New(start)
			go func() {
				for i := 1; clk.WaitCreated(ctx, i) == nil; i++ {
					if next, ok := clk.Next(); ok {
						clk.Set(next)
					}
				}
			}()
			var stderr bytes.Buffer
			opened, err := untilWindow(ctx, clk, rotator.App{Name: "main-app", Window: tc.w}, &stderr)
			if err != nil || stamp(opened) != tc.opened || stderr.String() != tc.say {
				t.Fatalf("untilWindow = %q, %v, said %q; want %q, said %q", stamp(opened), err, stderr.String(), tc.opened, tc.say)
			}
		})
	}
}
