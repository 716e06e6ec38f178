package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

var marks = map[Status]string{OK: "✓", Warn: "⚠", Fail: "✗"}

// WriteText prints the checklist for people: one line per check, the fix indented under every
// warning and failure.
func WriteText(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "lwa-rotator doctor: %d checks, %d failed, %d warnings\n", len(r.Items), r.Failed, r.Warned)
	subject := ""
	for _, it := range r.Items {
		if it.Subject != subject {
			subject = it.Subject
			fmt.Fprintf(&b, "\n%s\n", subject)
		}
		fmt.Fprintf(&b, "  %s %-18s %s\n", marks[it.Status], it.ID, it.Summary)
		if it.Status != OK && it.Fix != "" {
			lines := strings.Split(it.Fix, "\n")
			fmt.Fprintf(&b, "      fix: %s\n", lines[0])
			for _, l := range lines[1:] {
				fmt.Fprintf(&b, "           %s\n", l)
			}
		}
	}
	if r.OK() {
		b.WriteString("\nEverything doctor checks is in place.\n")
	} else {
		fmt.Fprintf(&b, "\n%d check(s) failed: apply the fixes above and run doctor again.\n", r.Failed)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the checklist for scripts.
func WriteJSON(w io.Writer, r Report) error {
	if r.Items == nil {
		r.Items = []Item{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		OK bool `json:"ok"`
		Report
	}{r.OK(), r})
}
