//go:build !lwa_rotator_crashpoints

package daemon

import (
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/rotator"
)

// crashPoint is inert in production builds: LWA_ROTATOR_TEST_CRASH_AT does nothing.
func crashPoint(string, *zap.Logger) func(rotator.Step) { return nil }
