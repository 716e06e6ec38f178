// Package daemon wires the packages into the running service: configuration, clients, the
// rotator, the SQS consumers and the HTTP listener. cmd/lwa-rotator and the sandbox start it, and
// tests start and stop it in-process, sending signals as channel values.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/internal/clock"
	"github.com/spapi-tools/lwa-rotator/internal/daemon/reload"
	"github.com/spapi-tools/lwa-rotator/notifications"
)

// Options are what the caller decides; everything else comes from the configuration file.
type Options struct {
	ConfigPath string
	Getenv     func(string) string
	// Listen overrides the configuration's listen address (--listen).
	Listen string
	// AWS is the SDK configuration for SQS, Secrets Manager and KMS (credentials, region and
	// endpoints from the SDK's standard chain in production).
	AWS aws.Config
	// HTTP is the client for LWA and SP-API; nil gives a hardened default (TLS 1.2+, timeouts).
	HTTP  *http.Client
	Clock clock.Clock
	// Hostname names the replica in its claims when the configuration names none; nil: the host's.
	Hostname func() (string, error)
	Signals  <-chan os.Signal
	// Log, when set, replaces the JSON production logger (the sandbox passes a console logger).
	// Level is its level; nil means the configuration's logLevel.
	Log     *zap.Logger
	Level   *zap.AtomicLevel
	Version string
	// Revision is the stamped source revision for lwa_rotator_build_info; empty uses Go's VCS data.
	Revision string
	// OnListen is told the bound listener address once /metrics is up.
	OnListen func(addr string)
	// DrainTimeout bounds how long SIGTERM waits for the message in hand (default 30s).
	DrainTimeout time.Duration
}

// Run runs the daemon until ctx ends or a SIGINT/SIGTERM arrives on o.Signals, then drains: it
// stops taking messages, finishes the one in hand, and returns nil.
func Run(ctx context.Context, o Options) error {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Hostname == nil {
		o.Hostname = os.Hostname
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 30 * time.Second
	}
	// Loaded as every reload loads it, before any AWS call: an AWS endpoint variable that breaks
	// the transport rule is refused here.
	cfg, err := reload.Load(o.ConfigPath, o.Getenv)
	if err != nil {
		return err
	}
	level := o.Level
	if level == nil {
		// logLevel is the log part's: the first apply sets it, so the start-up checks before it
		// log at info.
		l := zap.NewAtomicLevel()
		level = &l
	}
	log := o.Log
	if log == nil {
		if log, err = newJSONLogger(*level); err != nil {
			return err
		}
	}
	defer func() { _ = log.Sync() }()

	d, err := build(ctx, o, cfg, log, level)
	if err != nil {
		return err
	}
	listen := cfg.Listen
	if o.Listen != "" {
		listen = o.Listen
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("lwa-rotator started", zap.String("listen", ln.Addr().String()), zap.String("version", o.Version),
		zap.Int("applications", len(cfg.Applications)))
	if o.OnListen != nil {
		o.OnListen(ln.Addr().String())
	}

	runCtx, stopRotator := context.WithCancel(context.WithoutCancel(ctx))
	recvCtx, stopReceiving := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = d.rot.Run(runCtx) })
	// Webhook deliveries stop with the rotator; what is pending then is abandoned (and logged),
	// not persisted: see docs/consumers.md.
	wg.Go(func() { d.webhooks.Run(runCtx) })
	if len(d.deadLetters) > 0 {
		wg.Go(func() {
			(&notifications.DeadLetterWatcher{SQS: d.sqs, Queues: d.deadLetters, Every: cfg.Queues.DeadLetterInterval.D(),
				Clock: o.Clock, Observer: d.metrics, Log: log}).Run(runCtx)
		})
	}
	var consumersDone sync.WaitGroup
	for _, c := range d.consumers {
		consumersDone.Go(func() {
			if err := c.Run(recvCtx); err != nil {
				log.Error("SQS consumer stopped", zap.String("queue_url", c.QueueURL), zap.Error(err))
			}
		})
	}

	// Reloads run beside the signal loop, one at a time, so a reload waiting on AWS never holds
	// up SIGTERM; SIGHUPs that arrive during one coalesce into one more.
	reloadCtx, stopReloads := context.WithCancel(context.WithoutCancel(ctx))
	reloads := make(chan struct{}, 1)
	var reloader sync.WaitGroup
	reloader.Go(func() {
		for {
			select {
			case <-reloadCtx.Done():
				return
			case <-reloads:
				// A refusal is logged and counted by the coordinator; the running configuration stays.
				_ = d.config.Reload(reloadCtx)
			}
		}
	})

	d.waitForStop(ctx, o.Signals, reloads)
	// A reload in progress is cancelled but not waited for here: it may be waiting for a busy
	// application, which lets go only once the rotator stops below.
	stopReloads()

	d.health.draining.Store(true)
	log.Info("draining: no new messages; finishing the one in hand")
	stopReceiving()
	drained := make(chan struct{})
	go func() { consumersDone.Wait(); close(drained) }()
	t := o.Clock.NewTimer(o.DrainTimeout)
	select {
	case <-drained:
		t.Stop()
	case <-t.C():
		log.Error("drain timed out; messages in hand return to the queue after their visibility timeout")
	}
	stopRotator()
	wg.Wait()
	reloader.Wait()
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("closing the HTTP listener", zap.Error(err))
	}
	log.Info("lwa-rotator stopped")
	return nil
}

// waitForStop serves signals until a stop signal or ctx's end.
func (d *daemon) waitForStop(ctx context.Context, signals <-chan os.Signal, reloads chan<- struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-signals:
			switch s {
			case syscall.SIGUSR1:
				d.log.Info("SIGUSR1: rotating every application now")
				d.rot.Trigger("")
			case syscall.SIGHUP:
				select {
				case reloads <- struct{}{}:
				default: // one is already queued; it will read the newest file
				}
			case syscall.SIGINT, syscall.SIGTERM:
				d.log.Info("stop signal received", zap.String("signal", s.String()))
				return
			}
		}
	}
}
