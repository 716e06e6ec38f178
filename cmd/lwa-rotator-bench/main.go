// Command lwa-rotator-bench measures lwa-rotator from outside (package bench) and prints the
// figures as Markdown, optionally writing JSON too:
//
//	go run ./cmd/lwa-rotator-bench [-quick] [-apps 1,100,1000] [-json FILE] [-md FILE]
//
// `lwa-rotator-bench naive --config F --listen A` runs the naive baseline the benchmark
// compares against; the benchmark starts it itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/bench"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "naive" {
		os.Exit(naive(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:]))
}

func naive(args []string) int {
	fs := flag.NewFlagSet("naive", flag.ContinueOnError)
	cfg := fs.String("config", "", "configuration file (the daemon's)")
	listen := fs.String("listen", "127.0.0.1:0", "HOST:PORT for /readyz and /healthz")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGINT, syscall.SIGTERM)
	if err := bench.RunNaive(context.Background(), *cfg, *listen, sig); err != nil {
		fmt.Fprintln(os.Stderr, "naive:", err)
		return 1
	}
	return 0
}

func run(args []string) int {
	fs := flag.NewFlagSet("lwa-rotator-bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "development run: 1 application, short windows (about a minute)")
	apps := fs.String("apps", "", "comma-separated world sizes (default 1,100,1000; -quick: 1)")
	idle := fs.Duration("idle", 0, "idle window (default 60s; -quick: 10s)")
	starts := fs.Int("starts", 0, "start-ups per size and kind (default 3)")
	rotations := fs.Int("rotations", 0, "rotations per injected delay (default 15)")
	delays := fs.String("delays", "", "comma-separated injected delays (default 0,20ms,50ms)")
	backlog := fs.Int("backlog", 0, "backlog messages at the largest size (default 500; negative skips)")
	perMessage := fs.Int("per-message", 0, "notifications of each no-op kind sent to a running client (default 10)")
	noNaive := fs.Bool("no-naive", false, "skip the naive baseline")
	jsonPath := fs.String("json", "", "also write the result as JSON to this file")
	mdPath := fs.String("md", "", "write the Markdown table to this file instead of stdout")
	verbose := fs.Bool("v", false, "pass the processes' own output to stderr")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o := bench.Options{}
	if *quick {
		o = bench.Quick()
	}
	if *apps != "" {
		o.Apps = nil
		for _, s := range strings.Split(*apps, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				fmt.Fprintln(os.Stderr, "-apps: not a list of positive numbers")
				return 2
			}
			o.Apps = append(o.Apps, n)
		}
	}
	if *delays != "" {
		o.Delays = nil
		for _, s := range strings.Split(*delays, ",") {
			s = strings.TrimSpace(s)
			if s == "0" {
				s = "0s"
			}
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 {
				fmt.Fprintln(os.Stderr, "-delays: not a list of durations")
				return 2
			}
			o.Delays = append(o.Delays, d)
		}
	}
	set := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	set(&o.Starts, *starts)
	set(&o.Rotations, *rotations)
	set(&o.Backlog, *backlog)
	set(&o.PerMessage, *perMessage)
	if *idle != 0 {
		o.IdleWindow = *idle
	}
	o.NoNaive = *noNaive
	o.Progress = os.Stderr
	if *verbose {
		o.Logs = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lwa-rotator-bench:", err)
		if res == nil || len(res.Figures) == 0 {
			return 1
		}
	}
	var out io.Writer = os.Stdout
	if *mdPath != "" {
		f, ferr := os.Create(*mdPath)
		if ferr != nil {
			fmt.Fprintln(os.Stderr, ferr)
			return 1
		}
		defer f.Close()
		out = f
	}
	if werr := bench.WriteMarkdown(out, res); werr != nil {
		fmt.Fprintln(os.Stderr, werr)
		return 1
	}
	if *jsonPath != "" {
		f, ferr := os.Create(*jsonPath)
		if ferr != nil {
			fmt.Fprintln(os.Stderr, ferr)
			return 1
		}
		defer f.Close()
		if werr := bench.WriteJSON(f, res); werr != nil {
			fmt.Fprintln(os.Stderr, werr)
			return 1
		}
	}
	if err != nil {
		return 1
	}
	return 0
}
