package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/debug"
	"syscall"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/internal/daemon"
)

// version and revision are stamped by scripts/build.sh (-ldflags "-X main.version=… -X main.revision=…").
// An unstamped build (go run, go install) falls back to the VCS data Go records, if any.
var (
	version  = "dev"
	revision = ""
)

var commandWord = regexp.MustCompile(`^[a-z-]{1,20}$`)

// errUsage marks a command-line mistake (exit code 2).
var errUsage = errors.New("usage")

const usage = `usage: lwa-rotator <command> [flags]

commands:
  run           run the daemon (--config FILE, --listen HOST:PORT)
  check-config  validate a configuration file and print every problem, then any warning (--config FILE)
  doctor        check, read-only, the queues, keys, secrets, LWA and SP-API set-up; a fix for each failure (--config FILE, --json)
  status        where each application's rotation stands, read from Secrets Manager; exit 1 if any needs attention (--config FILE, --json)
  rotate        request a rotation of one application through the vault (--app NAME, --wait, --timeout D, --reason TEXT, --in-window)
  seed          store an existing client secret (stdin or a no-echo prompt) as an application's first AWSCURRENT (--app NAME, --force, --expires-at T)
  healthcheck   exit 0 if the daemon's /healthz answers 200, else 1 (--listen, --url, --config, --timeout)
  version       print the version and build information
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	disableCoreDumps()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stderr)
	case "check-config":
		return cmdCheckConfig(args[1:], stdout, stderr)
	case "doctor":
		return cmdDoctor(ctx, args[1:], stdout, stderr)
	case "status":
		return cmdStatus(ctx, args[1:], stdout, stderr)
	case "rotate":
		return cmdRotate(ctx, args[1:], stdout, stderr)
	case "seed":
		return cmdSeed(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(ctx, args[1:], os.Getenv, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		// Repeated only when it looks like a command word: a secret may be pasted anywhere.
		if commandWord.MatchString(args[0]) {
			fmt.Fprintf(stderr, "unknown command %q\n%s", args[0], usage)
		} else {
			fmt.Fprintf(stderr, "unknown command (not shown)\n%s", usage)
		}
		return errUsage
	}
}

func defaultConfigPath() string { return defaultConfigPathFrom(os.Getenv) }

func defaultConfigPathFrom(getenv func(string) string) string {
	if p := getenv("LWA_ROTATOR_CONFIG"); p != "" {
		return p
	}
	return "/etc/lwa-rotator/config.yaml"
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfigPath(), "configuration file (env LWA_ROTATOR_CONFIG)")
	listen := fs.String("listen", "", "HOST:PORT for /metrics, /healthz and /readyz (overrides the file)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	// Credentials, region and endpoints (AWS_ENDPOINT_URL_SQS, …) come from the SDK's standard chain.
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading the AWS configuration: %w", err)
	}
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	return daemon.Run(ctx, daemon.Options{
		ConfigPath: *cfgPath, Listen: *listen, AWS: awsCfg, Signals: sig, Version: version, Revision: buildRevision(),
	})
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", defaultConfigPath(), "configuration file (env LWA_ROTATOR_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg, err := config.Load(*cfgPath, os.Getenv)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: configuration OK: %d application(s), expiry queue %s, new-secret queue %s, renewBefore %s\n",
		*cfgPath, len(cfg.Applications), cfg.Queues.Expiry, cfg.Queues.NewSecret, cfg.RenewBefore.D())
	// Warnings do not fail the check: the configuration is valid, perhaps not what was meant.
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return nil
}

func versionString() string {
	return fmt.Sprintf("lwa-rotator %s (revision %s, %s, %s/%s)", version, buildRevision(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildRevision is the stamped revision, else the one Go recorded from the checkout, else "unknown".
func buildRevision() string {
	if revision != "" {
		return revision
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// disableCoreDumps keeps a crash from writing the process memory, secrets included, to disk.
func disableCoreDumps() {
	_ = syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: 0, Max: 0})
}
