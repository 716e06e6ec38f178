//go:build !lwa_rotator_crashpoints

package daemon

import "go.uber.org/zap"

// crashPoint is inert in production builds: LWA_ROTATOR_TEST_CRASH_AT does nothing.
func crashPoint(string, *zap.Logger) func(string) { return nil }
