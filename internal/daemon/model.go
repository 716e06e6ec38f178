package daemon

import (
	"github.com/spapi-tools/lwa-rotator/config"
	"github.com/spapi-tools/lwa-rotator/rotator"
)

// RotatorSettings is the configuration as the rotation model's settings: the translation the
// daemon runs with, which the operator commands (status, rotate, seed, doctor) use too, so they
// report the very decision the daemon makes.
func RotatorSettings(cfg *config.Config) rotator.Settings { return settings(cfg) }

// RotatorApps is the configured applications as the rotation model sees them, in configuration
// order: the daemon's own translation (see RotatorSettings).
func RotatorApps(cfg *config.Config) []rotator.App { return apps(cfg) }
