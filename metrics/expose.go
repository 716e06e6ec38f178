package metrics

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Handler serves /metrics. The text format, which Prometheus asks for unless configured
// otherwise, is written here: the registry's families through expfmt, then the per-application
// state lines straight from the rotator's snapshot, gzip-compressed at BestSpeed when the client
// accepts it. Going through client_golang's Gather for a thousand applications' state (a const
// metric per series, label pairs, consistency checks, sorting) cost most of a scrape's CPU, and
// the state is already one line per series in a fixed order. Every other format (protobuf, or a
// registry that fails to gather) is served by promhttp over Gatherer, which holds the same series
// from the same stateSeries.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Gatherer gathers everything /metrics serves: the registry given to New and the state.
func (m *Metrics) Gatherer() prometheus.Gatherer { return prometheus.Gatherers{m.reg, m.stateReg} }

type textHandler struct {
	reg   *prometheus.Registry
	state *stateCollector
	other http.Handler // promhttp over Gatherer
}

var (
	bufPool  = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	linePool = sync.Pool{New: func() any { s := make([][]byte, len(appFamilies)); return &s }}
	gzipPool = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level never fails
		return w
	}}
	// The text format's escapes: a label value escapes \, " and newline; help text \ and newline.
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func init() {
	for i, f := range appFamilies {
		f.idx = i
	}
}

func (h *textHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	format := expfmt.Negotiate(r.Header)
	if format.FormatType() != expfmt.TypeTextPlain {
		h.other.ServeHTTP(w, r)
		return
	}
	families, err := h.reg.Gather()
	if err != nil {
		h.other.ServeHTTP(w, r) // promhttp reports the error its own way
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(buf, f); err != nil {
			h.other.ServeHTTP(w, r)
			return
		}
	}
	h.state.writeText(buf)

	w.Header().Set("Content-Type", string(format))
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		_, _ = w.Write(buf.Bytes())
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	gz := gzipPool.Get().(*gzip.Writer)
	defer gzipPool.Put(gz)
	gz.Reset(w)
	_, _ = gz.Write(buf.Bytes())
	_ = gz.Close()
}

// acceptsGzip reports whether an Accept-Encoding header lists gzip without q=0.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}

// writeText appends the state families in the text format: each family's header, then one line
// per application in the snapshot's order.
func (c *stateCollector) writeText(buf *bytes.Buffer) {
	lp := linePool.Get().(*[][]byte)
	defer linePool.Put(lp)
	lines := *lp
	for i := range lines {
		lines[i] = lines[i][:0]
	}
	for _, s := range c.state.Snapshot() {
		app := s.App
		if strings.ContainsAny(app, "\\\"\n") {
			app = labelEscaper.Replace(app)
		}
		stateSeries(s, func(f *family, v float64) {
			b := append(lines[f.idx], f.name...)
			b = append(b, `{application="`...)
			b = append(b, app...)
			b = append(b, `"} `...)
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
			lines[f.idx] = append(b, '\n')
		})
	}
	for _, f := range appFamilies {
		if len(lines[f.idx]) > 0 {
			buf.Write(f.header)
			buf.Write(lines[f.idx])
		}
	}
	buf.Write(famReady.header)
	buf.WriteString(famReady.name)
	if c.isReady() {
		buf.WriteString(" 1\n")
	} else {
		buf.WriteString(" 0\n")
	}
}
