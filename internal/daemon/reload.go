package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// Start-up and SIGHUP share one path: a configuration is loaded, vetted by every check, and only
// then applied as a whole. A reload that fails any check, or changes a field only a restart can
// apply, is refused and the running configuration stays (Alertmanager's coordinator works this
// way: subscribers that can veto, then apply, then a hash of what runs).

// refusal is a configuration that failed its checks; each problem names its field or resource.
type refusal struct {
	problems []string
	// atRest is set when encryption findings refused it (atRest: refuse).
	atRest bool
}

func (r *refusal) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "configuration refused (%d problems)", len(r.problems))
	if r.atRest {
		fmt.Fprintf(&b, ": %v (set atRest: warn to start anyway)", vault.ErrAtRest)
	}
	b.WriteString(":")
	for _, p := range r.problems {
		b.WriteString("\n  - ")
		b.WriteString(p)
	}
	return b.String()
}

func (r *refusal) Unwrap() error {
	if r.atRest {
		return vault.ErrAtRest
	}
	return nil
}

// vet runs every check next must pass before it runs: the transport rule for AWS endpoints, the
// restart-only fields (against the running configuration; nil at start-up), and the at-rest and
// tag-room checks of every secret that is new or points elsewhere. queueViolations are the
// queues' encryption findings, gathered at start-up only since queues change only on restart.
func (d *daemon) vet(ctx context.Context, running, next *config.Config, queueViolations []string) error {
	r := &refusal{}
	if err := next.CheckAWSEndpoints(d.opts.Getenv); err != nil {
		var ve *config.ValidationError
		if errors.As(err, &ve) {
			r.problems = append(r.problems, ve.Problems...)
		}
	}
	if running != nil {
		r.problems = append(r.problems, restartOnlyChanges(running, next, d.opts.Listen != "")...)
	}
	violations, refusals, err := d.secrets.Check(ctx, secretRefs(changedApps(running, next)))
	if err != nil {
		return err
	}
	r.problems = append(r.problems, refusals...)
	violations = append(queueViolations, violations...)
	if len(violations) > 0 {
		if next.AtRest == "warn" {
			for _, v := range violations {
				d.log.Warn("encryption at rest: "+v, zap.String("at_rest", "warn"))
			}
		} else {
			r.problems = append(r.problems, violations...)
			r.atRest = true
		}
	}
	if len(r.problems) > 0 {
		return r
	}
	return nil
}

func secretRefs(apps []config.Application) []vault.SecretRef {
	out := make([]vault.SecretRef, 0, len(apps))
	for _, a := range apps {
		out = append(out, vault.SecretRef{App: a.Name, SecretID: a.SecretID})
	}
	return out
}

// changedApps are the applications of next whose secret has not been checked yet: all of them at
// start-up, the added ones and those pointing at another secret on a reload.
func changedApps(running, next *config.Config) []config.Application {
	if running == nil {
		return next.Applications
	}
	checked := map[string]bool{}
	for _, a := range running.Applications {
		checked[a.SecretID] = true
	}
	var out []config.Application
	for _, a := range next.Applications {
		if !checked[a.SecretID] {
			out = append(out, a)
		}
	}
	return out
}

// restartOnly are the fields whose clients, consumers and listener are built once: a reload
// cannot apply a change to them, so it refuses rather than pretend. Every other field reloads
// (README lists them).
var restartOnly = []struct {
	field string
	get   func(*config.Config) any
}{
	{"queues.expiry", func(c *config.Config) any { return c.Queues.Expiry }},
	{"queues.newSecret", func(c *config.Config) any { return c.Queues.NewSecret }},
	{"queues.visibilityTimeout", func(c *config.Config) any { return c.Queues.VisibilityTimeout }},
	{"queues.rejectedRetry", func(c *config.Config) any { return c.Queues.RejectedRetry }},
	{"queues.deadLetterInterval", func(c *config.Config) any { return c.Queues.DeadLetterInterval }},
	{"queues.allowedSenderIds", func(c *config.Config) any { return c.Queues.AllowedSenderIDs }},
	{"kmsKeyId", func(c *config.Config) any { return c.KMSKeyID }},
	{"requestPollInterval", func(c *config.Config) any { return c.RequestPollInterval }},
	{"secretFormat", func(c *config.Config) any { return c.SecretFormat }},
	{"endpoints.lwa", func(c *config.Config) any { return c.Endpoints.LWA }},
	{"endpoints.spapi", func(c *config.Config) any { return c.Endpoints.SPAPI }},
	{"endpoints.rotateInterval", func(c *config.Config) any { return c.Endpoints.RotateInterval }},
	{"allowInsecureLoopback", func(c *config.Config) any { return c.AllowInsecureLoopback }},
}

// RestartOnlyFields names the fields a reload refuses to change, for the README's list and tests.
func RestartOnlyFields() []string {
	out := []string{"listen"}
	for _, f := range restartOnly {
		out = append(out, f.field)
	}
	return out
}

func restartOnlyChanges(running, next *config.Config, listenFromFlag bool) []string {
	var out []string
	// With --listen the file's listen is not what runs, so changing it changes nothing.
	if !listenFromFlag && running.Listen != next.Listen {
		out = append(out, "listen: changes only on restart")
	}
	for _, f := range restartOnly {
		if !equalValues(f.get(running), f.get(next)) {
			out = append(out, f.field+": changes only on restart")
		}
	}
	return out
}

// equalValues treats an empty list or map like a missing one.
func equalValues(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if (va.Kind() == reflect.Slice || va.Kind() == reflect.Map) && va.Len() == 0 && vb.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// configHash identifies the running configuration in a metric: the first 48 bits of the SHA-256
// of its effective form (after environment overrides and defaults), exact in a float64. The
// configuration holds no secret, so its hash reveals none.
func configHash(c *config.Config) float64 {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return float64(binary.BigEndian.Uint64(sum[:8]) >> 16)
}

// reload re-reads the configuration (SIGHUP) and applies it only if every check passes. State
// first, then words: the metric moves before the log lines.
func (d *daemon) reload(ctx context.Context) {
	now := d.opts.Clock.Now
	d.mu.Lock()
	running := d.cfg
	d.mu.Unlock()
	var problems []string
	next, err := config.Load(d.opts.ConfigPath, d.opts.Getenv)
	if err == nil {
		err = d.vet(ctx, running, next, nil)
	}
	var ve *config.ValidationError
	var rf *refusal
	switch {
	case err == nil:
	case errors.As(err, &ve):
		problems = ve.Problems
	case errors.As(err, &rf):
		problems = rf.problems
	default:
		problems = []string{err.Error()}
	}
	if len(problems) > 0 {
		d.metrics.Reloaded(false, now())
		for _, p := range problems {
			d.log.Error("SIGHUP: configuration reload failed; keeping the running configuration", zap.String("problem", p))
		}
		return
	}
	d.apply(next)
	d.metrics.ConfigApplied(configHash(next), now())
	d.log.Info("SIGHUP: configuration reloaded", zap.Int("applications", len(next.Applications)))
}

// apply hands a vetted configuration to every part that reloads.
func (d *daemon) apply(cfg *config.Config) {
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	if d.opts.Level == nil {
		if l, err := zap.ParseAtomicLevel(cfg.LogLevel); err == nil {
			d.level.SetLevel(l.Level())
		}
	}
	if err := d.rot.Reconfigure(apps(cfg), settings(cfg)); err != nil {
		// vet checked the same configuration; reaching this is a bug in config's validation.
		d.log.Error("applying the rotator's settings", zap.Error(err))
	}
	// Webhooks reload whole: URLs and key sources are replaced and every key is read again.
	d.webhooks.Configure(webhookTargets(cfg))
}
