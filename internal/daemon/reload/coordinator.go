// Package reload applies a configuration to the parts of the daemon that own its settings, at
// start-up and on every SIGHUP alike, in two steps: every part checks the configuration and may
// refuse it, and only when none refused does every part apply it. A refused configuration changes
// nothing anywhere, and the metrics say so (Alertmanager's configuration coordinator, with a veto).
package reload

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/internal/clock"
)

// Check vets next against what the part runs (running is nil at start-up: the first apply) and
// returns how to apply it; nil apply means the part has nothing to change. An error refuses the
// configuration: its text names field paths or resources, never a value typed into the file. A
// check may read (AWS, files) but changes nothing the daemon runs: that is apply's job, and apply
// cannot fail, so everything that can go wrong belongs in the check.
type Check func(ctx context.Context, running, next *config.Config) (apply func(), err error)

// Part is one owner of settings.
type Part struct {
	// Name is the part's label in the refusal log line and metric: a word from the code, never
	// from the configuration, so the label stays bounded.
	Name  string
	Check Check
}

// LoadPart names a configuration that did not load (unreadable, invalid, or an AWS endpoint
// variable breaking the transport rule) in the log line and metric, beside the parts' names.
const LoadPart = "config"

// Metrics is what the coordinator reports: the hash of what runs, whether the last attempt was
// applied, and which part refused it.
type Metrics interface {
	// ConfigApplied: a configuration with hash now runs (sets the last attempt successful).
	ConfigApplied(hash float64, at time.Time)
	// Reloaded records an attempt; the coordinator calls it only with false.
	Reloaded(ok bool, at time.Time)
	// ConfigRefused counts one refusal by part.
	ConfigRefused(part string)
}

// Options wires a Coordinator.
type Options struct {
	Path   string
	Getenv func(string) string
	Clock  clock.Clock
	Log    *zap.Logger
	// Metrics may be nil (tests of other things).
	Metrics Metrics
	// Parts are checked, then applied, in this order.
	Parts []Part
}

// Coordinator holds the running configuration and hands every new one to the parts. Apply and
// Reload are not safe to call concurrently with each other: the daemon calls Apply once before
// it serves signals, then Reload from one goroutine. No lock is held across the parts' checks,
// which may call AWS.
type Coordinator struct {
	o       Options
	running atomic.Pointer[config.Config]
}

// New returns a coordinator that runs nothing yet: Apply at start-up is its first apply.
func New(o Options) *Coordinator {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	return &Coordinator{o: o}
}

// Load reads and validates the configuration at path as this process sees it: the file, its
// LWA_ROTATOR_* overrides, and the AWS endpoint variables held to the file's transport rule.
// Start-up and Reload both load through it.
func Load(path string, getenv func(string) string) (*config.Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	cfg, err := config.Load(path, getenv)
	if err != nil {
		return nil, err
	}
	if err := cfg.CheckAWSEndpoints(getenv); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Running is the configuration last applied; nil before the first apply.
func (c *Coordinator) Running() *config.Config { return c.running.Load() }

// Apply checks next with every part and, only when none refused, applies it to every part. A
// refusal returns a *RefusedError naming each refusing part, and nothing is applied. The daemon
// calls it once at start-up; Reload calls it for every SIGHUP.
func (c *Coordinator) Apply(ctx context.Context, next *config.Config) error {
	running := c.running.Load()
	applies := make([]func(), 0, len(c.o.Parts))
	refused := &RefusedError{}
	for _, p := range c.o.Parts {
		apply, err := p.Check(ctx, running, next)
		if err != nil {
			refused.Parts = append(refused.Parts, PartRefusal{Part: p.Name, Problems: problemsOf(err), Err: err})
			continue
		}
		if apply != nil {
			applies = append(applies, apply)
		}
	}
	now := c.o.Clock.Now()
	if len(refused.Parts) > 0 {
		if c.o.Metrics != nil {
			c.o.Metrics.Reloaded(false, now)
			for _, r := range refused.Parts {
				c.o.Metrics.ConfigRefused(r.Part)
			}
		}
		return refused
	}
	for _, apply := range applies {
		apply()
	}
	c.running.Store(next)
	if c.o.Metrics != nil {
		c.o.Metrics.ConfigApplied(Hash(next), now)
	}
	// A warning is about a configuration that works but may not do what was meant (a rotation
	// window that cannot fit renewBefore): said at every apply, never refused. Warnings name
	// fields, never values.
	for _, w := range next.Warnings {
		c.o.Log.Warn("configuration warning; applied anyway", zap.String("warning", w))
	}
	return nil
}

// Reload loads the file again and applies it (SIGHUP). State first, then words: the metrics move
// before the log lines, one per problem, each naming the part that refused and the field.
func (c *Coordinator) Reload(ctx context.Context) error {
	next, err := Load(c.o.Path, c.o.Getenv)
	if err != nil {
		if c.o.Metrics != nil {
			c.o.Metrics.Reloaded(false, c.o.Clock.Now())
			c.o.Metrics.ConfigRefused(LoadPart)
		}
		for _, p := range problemsOf(err) {
			c.logRefusal(LoadPart, p)
		}
		return err
	}
	if err := c.Apply(ctx, next); err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			for _, r := range re.Parts {
				for _, p := range r.Problems {
					c.logRefusal(r.Part, p)
				}
			}
		}
		return err
	}
	c.o.Log.Info("SIGHUP: configuration reloaded", zap.Int("applications", len(next.Applications)))
	return nil
}

func (c *Coordinator) logRefusal(part, problem string) {
	c.o.Log.Error("SIGHUP: configuration reload failed; keeping the running configuration",
		zap.String("part", part), zap.String("problem", problem))
}

// Refusal is what a part's check returns to refuse a configuration with several problems. Cause,
// when set, is what errors.Is finds, for callers that branch on it (vault.ErrAtRest).
type Refusal struct {
	Problems []string
	Cause    error
}

func (r *Refusal) Error() string {
	s := strings.Join(r.Problems, "; ")
	if r.Cause != nil {
		return r.Cause.Error() + ": " + s
	}
	return s
}

func (r *Refusal) Unwrap() error { return r.Cause }

// RefusedError is a configuration that one or more parts refused: none of it was applied.
type RefusedError struct {
	Parts []PartRefusal // in the coordinator's part order
}

// PartRefusal is one part's refusal.
type PartRefusal struct {
	Part     string
	Problems []string
	Err      error
}

func (e *RefusedError) Error() string {
	n := 0
	names := make([]string, 0, len(e.Parts))
	for _, r := range e.Parts {
		n += len(r.Problems)
		names = append(names, r.Part)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "configuration refused by %s (%d problems):", strings.Join(names, ", "), n)
	for _, r := range e.Parts {
		for _, p := range r.Problems {
			b.WriteString("\n  - ")
			b.WriteString(r.Part)
			b.WriteString(": ")
			b.WriteString(p)
		}
	}
	return b.String()
}

// Unwrap gives every part's error, so errors.Is finds a cause any part gave.
func (e *RefusedError) Unwrap() []error {
	out := make([]error, 0, len(e.Parts))
	for _, r := range e.Parts {
		out = append(out, r.Err)
	}
	return out
}

// problemsOf lists an error's problems, one per line of the log and of the refusal.
func problemsOf(err error) []string {
	var r *Refusal
	var ve *config.ValidationError
	switch {
	case errors.As(err, &r):
		return r.Problems
	case errors.As(err, &ve):
		return ve.Problems
	default:
		return []string{err.Error()}
	}
}

// Hash identifies a configuration in a metric: the first 48 bits of the SHA-256 of its effective
// form (after environment overrides and defaults), exact in a float64. The configuration holds no
// secret, so its hash reveals none.
func Hash(c *config.Config) float64 {
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return float64(binary.BigEndian.Uint64(sum[:8]) >> 16)
}
