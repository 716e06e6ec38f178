//go:build lwa_rotator_crashpoints

package daemon

import (
	"go.uber.org/zap"

	"github.com/spapi-tools/lwa-rotator/rotator"
)

// crashPoint freezes the process at the named rotation step so the crash test can SIGKILL it
// exactly there. It exists only in binaries built with the lwa_rotator_crashpoints tag (the
// integration suite's crash test builds one); a production binary has no way to freeze.
func crashPoint(at string, log *zap.Logger) func(rotator.Step) {
	if at == "" {
		return nil
	}
	return func(step rotator.Step) {
		if string(step) != at {
			return
		}
		log.Warn("test crash point reached; waiting to be killed", zap.String("step", string(step)))
		select {}
	}
}
