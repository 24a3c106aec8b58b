package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/novashop/edge/loadgen/metrics"
)

// palette colours targets in the order given.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"}

const (
	chartW, chartH = 720, 260
	padL, padR     = 64, 16
	padT, padB     = 28, 40
	histBins       = 40
)

type point struct{ x, y float64 }

type line struct {
	name, color string
	dashed      bool
	pts         []point
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten, for axis ends.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// lineChart draws lines on linear axes starting at zero.
func lineChart(title, xLabel, yLabel string, lines []line) template.HTML {
	var xmax, ymax float64
	for _, l := range lines {
		for _, p := range l.pts {
			xmax, ymax = math.Max(xmax, p.x), math.Max(ymax, p.y)
		}
	}
	xmax, ymax = niceMax(xmax), niceMax(ymax)
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	sx := func(x float64) float64 { return padL + x/xmax*pw }
	sy := func(y float64) float64 { return padT + ph - y/ymax*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, chartW, chartH, chartW, chartH, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>`, padL, esc(title))
	for i := 0; i <= 4; i++ {
		y := ymax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, padL, chartW-padR, sy(y), sy(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`, padL-6, sy(y)+4, esc(fmt.Sprintf("%g", y)))
		x := xmax * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s</text>`, sx(x), chartH-padB+16, esc(fmt.Sprintf("%g", x)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle">%s</text>`, padL+int(pw/2), chartH-6, esc(xLabel))
	fmt.Fprintf(&b, `<text x="14" y="%d" font-size="11" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>`, padT+int(ph/2), padT+int(ph/2), esc(yLabel))
	for i, l := range lines {
		if len(l.pts) == 0 {
			continue
		}
		var pts strings.Builder
		for _, p := range l.pts {
			fmt.Fprintf(&pts, "%.1f,%.1f ", sx(p.x), sy(p.y))
		}
		dash := ""
		if l.dashed {
			dash = ` stroke-dasharray="5,3"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>`, l.color, dash, strings.TrimSpace(pts.String()))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="%s" text-anchor="end">%s</text>`, chartW-padR, padT+12+14*i, l.color, esc(l.name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// histogramChart draws the latency distribution on log-spaced bins, so a
// fast mode and a slow tail show on one picture.
func histogramChart(title, color string, bars []bin) template.HTML {
	var ymax float64
	for _, b := range bars {
		ymax = math.Max(ymax, b.pct)
	}
	ymax = niceMax(ymax)
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, chartW, chartH, chartW, chartH, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>`, padL, esc(title))
	for i := 0; i <= 4; i++ {
		y := ymax * float64(i) / 4
		py := padT + ph - y/ymax*ph
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, padL, chartW-padR, py, py)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s%%</text>`, padL-6, py+4, esc(fmt.Sprintf("%g", y)))
	}
	if len(bars) > 0 {
		bw := pw / float64(len(bars))
		for i, bar := range bars {
			h := bar.pct / ymax * ph
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s–%s: %d (%.2f%%)</title></rect>`,
				padL+float64(i)*bw+0.5, padT+ph-h, math.Max(bw-1, 0.5), h, color, esc(fmtMs(bar.from)), esc(fmtMs(bar.to)), bar.count, bar.pct)
			if i%8 == 0 || i == len(bars)-1 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle">%s</text>`, padL+float64(i)*bw+bw/2, chartH-padB+14, esc(fmtMs(bar.from)))
			}
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="middle">latency (log-spaced bins)</text>`, padL+int(pw/2), chartH-6)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// barChart draws one horizontal bar per (name, value), with the value
// printed at its end, in the given colours.
func barChart(title, unit string, names []string, values []float64, colors []string) template.HTML {
	var vmax float64
	for _, v := range values {
		vmax = math.Max(vmax, v)
	}
	vmax = niceMax(vmax)
	const rowH, labelW = 22, 160
	h := padT + rowH*len(names) + 24
	pw := float64(chartW - labelW - padR - 60)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`, chartW, h, chartW, h, esc(title))
	fmt.Fprintf(&b, `<text x="8" y="18" font-size="14" font-weight="bold">%s</text>`, esc(title))
	for i, n := range names {
		y := padT + rowH*i
		w := values[i] / vmax * pw
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end">%s</text>`, labelW-6, y+14, esc(n))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, labelW, y+3, w, rowH-6, colors[i%len(colors)])
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11">%s</text>`, float64(labelW)+w+4, y+14, esc(fmt.Sprintf("%.1f %s", values[i], unit)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// cpuChart shows each target's CPU µs per request, then each measured
// name's split by target, when CPU was measured.
func cpuChart(d *Document) template.HTML {
	if len(d.CPU) == 0 {
		return ""
	}
	var names []string
	var values []float64
	var colors []string
	for i, t := range d.Targets {
		names = append(names, t.Name+" (all)")
		values = append(values, t.CPUUsPerRequest)
		colors = append(colors, palette[i%len(palette)])
	}
	for i, t := range d.Targets {
		for _, l := range sortedKeys(t.CPUByLabel) {
			names = append(names, t.Name+": "+l)
			values = append(values, t.CPUByLabel[l])
			colors = append(colors, palette[i%len(palette)])
		}
	}
	return barChart("CPU per request, all measured processes (µs)", "µs", names, values, colors)
}

type bin struct {
	from, to float64 // ms
	count    int64
	pct      float64
}

// bins regroups an HDR histogram (microseconds) into histBins log-spaced
// bins between its lowest and highest recorded values.
func bins(m *metrics.Metrics) []bin {
	h := m.Latency
	total := h.TotalCount()
	if total == 0 {
		return nil
	}
	lo, hi := math.Max(float64(h.Min()), 1), math.Max(float64(h.Max()), 2)
	if hi <= lo {
		hi = lo * 2
	}
	ratio := math.Pow(hi/lo, 1/float64(histBins))
	out := make([]bin, histBins)
	for i := range out {
		out[i].from = lo * math.Pow(ratio, float64(i)) / 1000
		out[i].to = lo * math.Pow(ratio, float64(i+1)) / 1000
	}
	for _, bar := range h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		v := math.Max(float64(bar.From), lo)
		i := int(math.Log(v/lo) / math.Log(ratio))
		i = min(max(i, 0), histBins-1)
		out[i].count += bar.Count
	}
	for i := range out {
		out[i].pct = 100 * float64(out[i].count) / float64(total)
	}
	return out
}

type htmlTarget struct {
	Summary   metrics.Summary
	Color     string
	Over      template.HTML
	Histogram template.HTML
	Requests  []htmlRequest
}

type htmlRequest struct {
	Name string
	metrics.RequestSummary
}

type htmlPage struct {
	Doc     *Document
	Targets []htmlTarget
	Compare template.HTML
	CPU     template.HTML
	Ratios  []htmlRatio
}

type htmlRatio struct {
	Pair, Figure string
	Spread
}

// seriesLines returns p50 and p99 per second for m.
func seriesLines(m *metrics.Metrics, color string) []line {
	p50 := line{name: m.Name + " p50", color: color, dashed: true}
	p99 := line{name: m.Name + " p99", color: color}
	for i, s := range m.Series {
		if s == nil || s.Requests == 0 {
			continue
		}
		x := float64(i) + 0.5
		p50.pts = append(p50.pts, point{x, float64(s.Latency.ValueAtQuantile(50)) / 1000})
		p99.pts = append(p99.pts, point{x, float64(s.Latency.ValueAtQuantile(99)) / 1000})
	}
	return []line{p99, p50}
}

// WriteHTML writes one self-contained page: the table, p99 over time of
// every target on one chart, and per target its latency over time, its
// histogram and its per-request figures. ms must be in d.Targets' order.
func WriteHTML(w io.Writer, d *Document, ms []*metrics.Metrics) error {
	page := htmlPage{Doc: d, CPU: cpuChart(d)}
	var all []line
	for i, m := range ms {
		color := palette[i%len(palette)]
		s := m.Summary()
		if i < len(d.Targets) {
			s = d.Targets[i]
		}
		lines := seriesLines(m, color)
		all = append(all, lines[0])
		t := htmlTarget{
			Summary:   s,
			Color:     color,
			Over:      lineChart(m.Name+": latency over time (each round overlaid)", "seconds into the round", "ms", lines),
			Histogram: histogramChart(m.Name+": latency histogram", color, bins(m)),
		}
		for _, name := range sortedKeys(s.ByRequest) {
			t.Requests = append(t.Requests, htmlRequest{Name: name, RequestSummary: s.ByRequest[name]})
		}
		page.Targets = append(page.Targets, t)
	}
	if len(ms) > 1 {
		page.Compare = lineChart("p99 latency over time, all targets", "seconds into the round", "ms", all)
	}
	for _, pair := range sortedKeys(d.Ratios) {
		for _, f := range []string{"throughput", "p50", "p99"} {
			if s, ok := d.Ratios[pair][f]; ok {
				page.Ratios = append(page.Ratios, htmlRatio{Pair: pair, Figure: f, Spread: s})
			}
		}
	}
	if err := pageTmpl.Execute(w, page); err != nil {
		return fmt.Errorf("report: html: %w", err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"ms":     fmtMs,
	"pct":    func(v float64) string { return fmt.Sprintf("%.3f%%", 100*v) },
	"counts": fmtCounts,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>loadgen: {{.Doc.Campaign}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
.note{color:#555;font-size:90%}
.swatch{display:inline-block;width:12px;height:12px;margin-right:6px}
svg{display:block;margin:1em 0;background:#fff}
</style></head><body>
<h1>Campaign {{.Doc.Campaign}}</h1>
<p>Started {{.Doc.Started}}, {{.Doc.Rounds}} round(s){{if .Doc.Profile}}, rate profile: {{.Doc.Profile}}{{end}}.{{if .Doc.Interrupted}} <strong>Interrupted: these figures cover only what ran.</strong>{{end}}</p>
<p class="note">{{.Doc.Note}}</p>
<table><tr><th>target</th><th>requests</th><th>ok/s</th><th>success</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>status</th><th>cache</th></tr>
{{range .Targets}}{{with .Summary}}<tr><td>{{.Name}}</td><td>{{.Requests}}</td><td>{{printf "%.1f" .ThroughputRPS}}</td><td>{{pct .SuccessRatio}}</td><td>{{ms .Latency.Mean}}</td><td>{{ms .Latency.P50}}</td><td>{{ms .Latency.P90}}</td><td>{{ms .Latency.P99}}</td><td>{{ms .Latency.P999}}</td><td>{{ms .Latency.Max}}</td><td>{{counts .StatusCodes}}</td><td>{{counts .CacheStatus}}</td></tr>{{end}}
{{end}}</table>
{{if .Ratios}}<h2>Ratios between targets</h2>
<p class="note">Throughput a/b above 1: a serves more. Latency a/b below 1: a answers faster. Min, median and max over rounds.</p>
<table><tr><th>pair</th><th>figure</th><th>min</th><th>median</th><th>max</th></tr>
{{range .Ratios}}<tr><td>{{.Pair}}</td><td>{{.Figure}}</td><td>{{printf "%.3g" .Min}}</td><td>{{printf "%.3g" .Median}}</td><td>{{printf "%.3g" .Max}}</td></tr>
{{end}}</table>{{end}}
{{if .CPU}}<h2>Cost per request</h2>
<p class="note">CPU time of the measured processes (/proc utime+stime, children included, or cgroup usage) during each target's runs, divided by that target's requests: what the set-up costs to serve one request.</p>
{{.CPU}}{{end}}{{with .Doc.Settle}}<p class="note">{{.String}}</p>{{end}}
{{if .Compare}}{{.Compare}}{{end}}
{{range .Targets}}<h2><span class="swatch" style="background:{{.Color}}"></span>{{.Summary.Name}} <small>{{.Summary.URL}}</small></h2>
{{.Over}}
{{.Histogram}}
{{if .Summary.Errors}}<p>Errors: {{counts .Summary.Errors}}</p>{{end}}
{{if .Requests}}<table><tr><th>request</th><th>count</th><th>success</th><th>p50</th><th>p99</th></tr>
{{range .Requests}}<tr><td>{{.Name}}</td><td>{{.Requests}}</td><td>{{pct .SuccessRatio}}</td><td>{{ms .P50}}</td><td>{{ms .P99}}</td></tr>
{{end}}</table>{{end}}
{{end}}
</body></html>
`))
