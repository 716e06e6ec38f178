package daemon

import (
	"context"
	"reflect"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/internal/daemon/reload"
	"github.com/spapi-tools/lwa-rotator/internal/webhook"
	"github.com/spapi-tools/lwa-rotator/rotator"
	"github.com/spapi-tools/lwa-rotator/vault"
)

// The parts of the daemon that own settings, each with its rules: the coordinator
// (internal/daemon/reload) asks every part to check a configuration and applies it only when none
// refuses, at start-up (running is nil) and on every SIGHUP. A part built once from the start-up
// configuration refuses a reload that changes what it was built with, rather than pretend.

// parts are the daemon's owners of settings, checked and applied in this order: the log level
// first, so the apply's own lines use it; webhooks before the rotator, so an added application's
// first promotion finds its webhook. queueFindings are the queues' encryption findings, read when
// the queues were checked at start-up.
func parts(o Options, log *zap.Logger, level *zap.AtomicLevel, queueFindings []string, secrets secretChecker,
	webhooks *webhook.Notifier, rot *rotatorPart) []reload.Part {
	return []reload.Part{
		listenerPart(o.Listen != ""),
		logPart(level, o.Level != nil),
		queuesPart(log, queueFindings),
		restartOnlyPart("endpoints", endpointFields),
		vaultPart(log, secrets),
		webhooksPart(webhooks),
		rot.part(),
	}
}

// field is a setting read once, when its part is built.
type field struct {
	path string
	get  func(*config.Config) any
}

// The restart-only fields, by the part built from them. Every other field reloads (README).
var (
	queueFields = []field{
		{"queues.expiry", func(c *config.Config) any { return c.Queues.Expiry }},
		{"queues.newSecret", func(c *config.Config) any { return c.Queues.NewSecret }},
		{"queues.visibilityTimeout", func(c *config.Config) any { return c.Queues.VisibilityTimeout }},
		{"queues.rejectedRetry", func(c *config.Config) any { return c.Queues.RejectedRetry }},
		{"queues.deadLetterInterval", func(c *config.Config) any { return c.Queues.DeadLetterInterval }},
		{"queues.allowedSenderIds", func(c *config.Config) any { return c.Queues.AllowedSenderIDs }},
	}
	vaultFields = []field{
		{"kmsKeyId", func(c *config.Config) any { return c.KMSKeyID }},
		{"secretFormat", func(c *config.Config) any { return c.SecretFormat }},
	}
	endpointFields = []field{
		{"endpoints.lwa", func(c *config.Config) any { return c.Endpoints.LWA }},
		{"endpoints.spapi", func(c *config.Config) any { return c.Endpoints.SPAPI }},
		{"endpoints.rotateInterval", func(c *config.Config) any { return c.Endpoints.RotateInterval }},
		{"allowInsecureLoopback", func(c *config.Config) any { return c.AllowInsecureLoopback }},
	}
	rotatorFields = []field{
		{"requestPollInterval", func(c *config.Config) any { return c.RequestPollInterval }},
		{"holder", func(c *config.Config) any { return c.Holder }},
	}
)

// RestartOnlyFields names the fields a reload refuses to change, for the README's list and tests.
func RestartOnlyFields() []string {
	out := []string{"listen"}
	for _, fs := range [][]field{queueFields, vaultFields, endpointFields, rotatorFields} {
		for _, f := range fs {
			out = append(out, f.path)
		}
	}
	return out
}

// changed lists "path: changes only on restart" for each of fields that differs; none at start-up.
func changed(running, next *config.Config, fields []field) []string {
	if running == nil {
		return nil
	}
	var out []string
	for _, f := range fields {
		if !equalValues(f.get(running), f.get(next)) {
			out = append(out, f.path+": changes only on restart")
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

func refuse(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return &reload.Refusal{Problems: problems}
}

// restartOnlyPart is a part whose every setting is read once, when it is built.
func restartOnlyPart(name string, fields []field) reload.Part {
	return reload.Part{Name: name, Check: func(_ context.Context, running, next *config.Config) (func(), error) {
		return nil, refuse(changed(running, next, fields))
	}}
}

// listenerPart: the HTTP listener is bound once. With --listen the file's listen is not what
// runs, so changing it changes nothing.
func listenerPart(listenFromFlag bool) reload.Part {
	return reload.Part{Name: "listener", Check: func(_ context.Context, running, next *config.Config) (func(), error) {
		if running == nil || listenFromFlag || running.Listen == next.Listen {
			return nil, nil
		}
		return nil, refuse([]string{"listen: changes only on restart"})
	}}
}

// logPart owns logLevel, unless the caller fixed the level (Options.Level).
func logPart(level *zap.AtomicLevel, fromCaller bool) reload.Part {
	return reload.Part{Name: "log", Check: func(_ context.Context, _, next *config.Config) (func(), error) {
		if fromCaller {
			return nil, nil
		}
		l, err := zap.ParseAtomicLevel(next.LogLevel)
		if err != nil {
			return nil, refuse([]string{"logLevel: is not a log level"})
		}
		return func() { level.SetLevel(l.Level()) }, nil
	}}
}

// atRest applies the configuration's atRest policy to encryption findings: with warn they are
// logged when the configuration is applied, otherwise they refuse it.
func atRest(log *zap.Logger, next *config.Config, findings []string) (warn func(), problems []string) {
	if len(findings) == 0 {
		return nil, nil
	}
	if next.AtRest == "warn" {
		return func() {
			for _, f := range findings {
				log.Warn("encryption at rest: "+f, zap.String("at_rest", "warn"))
			}
		}, nil
	}
	return nil, append(append([]string{}, findings...), "atRest: refuses these encryption findings; atRest: warn logs them and runs")
}

// queuesPart owns the queues: their consumers, dispatcher and dead-letter watcher are built once.
// Their encryption was read when they were built (findings), so it is judged at start-up only.
func queuesPart(log *zap.Logger, findings []string) reload.Part {
	return reload.Part{Name: "queues", Check: func(_ context.Context, running, next *config.Config) (func(), error) {
		if running != nil {
			return nil, refuse(changed(running, next, queueFields))
		}
		warn, problems := atRest(log, next, findings)
		if len(problems) > 0 {
			return nil, &reload.Refusal{Problems: problems, Cause: vault.ErrAtRest}
		}
		return warn, nil
	}}
}

// secretChecker is the part of vault.AtRest the vault part uses.
type secretChecker interface {
	Check(ctx context.Context, secrets []vault.SecretRef) (violations, refusals []string, err error)
}

// vaultPart owns the secrets' store (kmsKeyId, secretFormat: built once) and checks every secret
// that is new or points elsewhere: encrypted with the configured key (atRest decides) and with
// room for the daemon's tags (always refused without).
func vaultPart(log *zap.Logger, secrets secretChecker) reload.Part {
	return reload.Part{Name: "vault", Check: func(ctx context.Context, running, next *config.Config) (func(), error) {
		if problems := changed(running, next, vaultFields); len(problems) > 0 {
			return nil, refuse(problems)
		}
		violations, refusals, err := secrets.Check(ctx, secretRefs(changedApps(running, next)))
		if err != nil {
			return nil, err
		}
		warn, problems := atRest(log, next, violations)
		var cause error
		if len(problems) > 0 {
			cause = vault.ErrAtRest
		}
		if problems = append(refusals, problems...); len(problems) > 0 {
			return nil, &reload.Refusal{Problems: problems, Cause: cause}
		}
		return warn, nil
	}}
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

// webhooksPart owns the applications' webhook blocks; they reload whole: URLs and key sources are
// replaced and every key is read again.
func webhooksPart(n *webhook.Notifier) reload.Part {
	return reload.Part{Name: "webhooks", Check: func(_ context.Context, _, next *config.Config) (func(), error) {
		targets := webhookTargets(next)
		return func() { n.Configure(targets) }, nil
	}}
}

// rotatorPart owns the applications and the rotation settings. The rotator is built by the first
// apply, so its applications and settings reach it only through this part, at start-up as on a
// reload; requestPollInterval is read when it is built.
type rotatorPart struct {
	opts rotator.Options // all but Apps and Settings
	log  *zap.Logger
	rot  *rotator.Rotator
}

func (p *rotatorPart) part() reload.Part {
	return reload.Part{Name: "rotator", Check: p.check}
}

func (p *rotatorPart) check(_ context.Context, running, next *config.Config) (func(), error) {
	a, s := apps(next), settings(next)
	if p.rot == nil {
		o := p.opts
		o.Apps, o.Settings, o.RequestPoll = a, s, next.RequestPollInterval.D()
		// New only builds (no goroutine, no call); it refuses what Reconfigure would.
		rot, err := rotator.New(o)
		if err != nil {
			return nil, err
		}
		return func() { p.rot = rot }, nil
	}
	if problems := changed(running, next, rotatorFields); len(problems) > 0 {
		return nil, refuse(problems)
	}
	if err := p.rot.Check(a, s); err != nil {
		return nil, err
	}
	return func() {
		if err := p.rot.Reconfigure(a, s); err != nil {
			// Check accepted the same values: reaching this is a bug in the rotator's Check.
			p.log.Error("applying the rotator's settings", zap.Error(err))
		}
	}, nil
}
