// Command lwa-rotator-sandbox runs the daemon on one machine with no AWS account: moto plays
// SQS, Secrets Manager and KMS, and the SP-API/LWA simulator plays Amazon. It is a command of its
// own so that the lwa-rotator binary, which holds credentials in production, links none of the
// fakes, simulators or the moto installer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spapi-tools/lwa-rotator/testsupport/sandbox"
)

// version is stamped like the daemon's (-ldflags "-X main.version=…"); the sandbox reports it in
// lwa_rotator_build_info.
var version = "dev"

var errUsage = errors.New("usage")

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lwa-rotator-sandbox:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lwa-rotator-sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := sandbox.Options{Out: stdout, Version: version}
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:9464", "HOST:PORT for the daemon's /metrics, /healthz and /readyz")
	fs.BoolVar(&o.SimulatorOnly, "simulator-only", false, "start moto and the SP-API/LWA simulator only, print their endpoints, and wait")
	fs.BoolVar(&o.ExitAfterRotation, "exit-after-rotation", false, "exit 0 once the first rotation is complete")
	fs.DurationVar(&o.WindowOpensIn, "window-opens-in", 0, "give the sandbox a rotation window (UTC, two hours) that opens at the first whole minute this long after start (1m..24h): the due rotation waits for it")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "lwa-rotator-sandbox takes flags only")
		return errUsage
	}
	// At least a minute, so the daemon's first pass sees the window closed; at most a day, well
	// before the sandbox secret's expiry less the window's safety margin (20d - 7d).
	if o.WindowOpensIn != 0 && (o.WindowOpensIn < time.Minute || o.WindowOpensIn > 24*time.Hour) {
		fmt.Fprintln(stderr, "lwa-rotator-sandbox: --window-opens-in must be between 1m and 24h")
		return errUsage
	}
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	o.Signals = sig
	return sandbox.Run(ctx, o)
}
