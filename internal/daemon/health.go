package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
)

// health tracks what /readyz reports: whether each queue answered its last call.
type health struct {
	// draining: a stop signal arrived. Set first thing, so load balancers and the orchestrator
	// see the daemon leaving before it finishes the message in hand.
	draining atomic.Bool

	mu     sync.Mutex
	queues map[string]error
}

func newHealth() *health { return &health{queues: map[string]error{}} }

// Polled implements notifications.Observer.
func (h *health) Polled(queueURL string, _ int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.queues[queueURL] = err
}

// problems lists why the daemon is not ready; empty means ready.
func (d *daemon) problems() []string {
	out := []string{}
	if d.health.draining.Load() {
		out = append(out, "draining: a stop signal was received")
	}
	d.health.mu.Lock()
	for q, err := range d.health.queues {
		if err != nil {
			out = append(out, fmt.Sprintf("queue %s unreachable: %v", q, err))
		}
	}
	d.health.mu.Unlock()
	if d.rot != nil {
		for _, s := range d.rot.Snapshot() {
			switch {
			case s.ConsecutiveFailures > 0:
				out = append(out, fmt.Sprintf("application %s: vault unreachable (%d consecutive failures): %s", s.App, s.ConsecutiveFailures, s.LastError))
			case s.LastError != "":
				out = append(out, fmt.Sprintf("application %s: %s", s.App, s.LastError))
			}
		}
	}
	sort.Strings(out)
	return out
}

func (d *daemon) ready() bool { return len(d.problems()) == 0 }

func (d *daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.metrics.Handler())
	// Liveness: the process answers. Restarting it cannot fix AWS, so nothing else belongs here.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	// Readiness: configuration valid (or we would not be running), queues and vault reachable.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		p := d.problems()
		w.Header().Set("Content-Type", "application/json")
		if len(p) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ready": len(p) == 0, "problems": p})
	})
	// The log level can be read and changed at runtime: GET, or PUT {"level":"debug"}.
	mux.Handle("/loglevel", d.level)
	return mux
}
