package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Machine is what the figures were measured on.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Go     string `json:"go"`
	Kernel string `json:"kernel"`
	Date   string `json:"date"`
}

// DescribeMachine reads the CPU model and kernel from /proc.
func DescribeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC().Format(time.RFC3339)}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// WriteJSON writes the result as indented JSON.
func WriteJSON(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the JSON result: %w", err)
	}
	return nil
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// WriteMarkdown writes the machine line and one table row per figure, with the naive baseline
// and the ratio naive ÷ daemon, then the details (request breakdowns) as a list.
func WriteMarkdown(w io.Writer, r *Result) error {
	m := r.Machine
	fmt.Fprintf(w, "Machine: %s, %d cores, %s, Linux %s, %s (run took %s)\n\n", m.CPU, m.Cores, m.Go, m.Kernel, m.Date, r.Elapsed)
	fmt.Fprintf(w, "| figure | apps | unit | daemon | naive | naive ÷ daemon |\n|---|---:|---|---:|---:|---:|\n")
	for _, f := range r.Figures {
		naive, ratio := "—", "—"
		if f.Naive != nil {
			naive = num(*f.Naive)
		}
		if f.Ratio != nil {
			ratio = num(*f.Ratio) + "×"
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s |\n", f.Name, f.Apps, f.Unit, num(f.Daemon), naive, ratio)
	}
	fmt.Fprintf(w, "\nDetails:\n\n")
	for _, f := range r.Figures {
		if f.Detail != "" {
			fmt.Fprintf(w, "- %s (%d apps): %s\n", f.Key, f.Apps, f.Detail)
		}
	}
	_, err := fmt.Fprintln(w)
	return err
}
