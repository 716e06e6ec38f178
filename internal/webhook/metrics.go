package webhook

import "github.com/prometheus/client_golang/prometheus"

// Result is the bounded vocabulary of lwa_rotator_webhook_deliveries_total's result label.
type Result string

const (
	// Acknowledged: the receiver answered 2xx; the event is done.
	Acknowledged Result = "acknowledged"
	// Failed: one attempt got no 2xx (an error, a timeout, another status, no key); it is retried.
	Failed Result = "failed"
	// Expired: retries stopped at the deadline without an acknowledgement.
	Expired Result = "expired"
	// Superseded: a newer promotion of the application replaced the event before it was acknowledged.
	Superseded Result = "superseded"
	// Dropped: the application's queue was full when the promotion came; the event was never sent.
	Dropped Result = "dropped"
	// Abandoned: the daemon stopped (or the webhook was removed) with the event still pending.
	Abandoned Result = "abandoned"
)

// Results lists every result, for series initialisation and help text.
var Results = []Result{Acknowledged, Failed, Expired, Superseded, Dropped, Abandoned}

// metrics are the webhook's counters; the acknowledged gauge is computed at scrape time from the
// workers' state (Notifier.Collect), so it can never disagree with what is pending.
type metrics struct {
	deliveries *prometheus.CounterVec
}

var acknowledgedDesc = prometheus.NewDesc("lwa_rotator_webhook_acknowledged",
	"1 when the webhook acknowledged the application's last promotion (or none happened since start), 0 while it is pending or was given up.",
	[]string{"application"}, nil)

func newMetrics() *metrics {
	help := ""
	for i, r := range Results {
		if i > 0 {
			help += ", "
		}
		help += string(r)
	}
	return &metrics{deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lwa_rotator", Name: "webhook_deliveries_total",
		Help: "Webhook delivery attempts and outcomes by application and result (" + help + ").",
	}, []string{"application", "result"})}
}

// init creates app's counter series, so alerts and dashboards see zeros rather than nothing.
func (m *metrics) init(app string) {
	for _, r := range Results {
		m.deliveries.WithLabelValues(app, string(r))
	}
}

func (m *metrics) count(app string, r Result) { m.deliveries.WithLabelValues(app, string(r)).Inc() }
