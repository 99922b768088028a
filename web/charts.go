package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
)

// Server-rendered SVG charts: a handful of bars need no chart library and
// no script, work offline, and print. Each chart is an <svg role="img">
// with a <title> and a <desc> that states every value, so a screen reader
// hears the data, not "image"; pages add a data table in <details> too.

// bar is one bar of a chart.
type bar struct {
	Label string
	Value float64
	Text  string // the value as shown ("3", "2h10m")
	Class string // CSS fill class, e.g. severity
}

var barFills = map[string]string{
	"critical": "#912018", "high": "#b93815", "medium": "#8a5300", "low": "#3e4784", "": "#1a56db", "muted": "#98a2b3",
}

// chartOpen writes the <svg> element with its accessible title and a
// description stating every value, and returns the largest value.
func chartOpen(sb *strings.Builder, id, title string, bars []bar, w, h float64) float64 {
	max := 0.0
	desc := make([]string, 0, len(bars))
	for _, b := range bars {
		max = math.Max(max, b.Value)
		desc = append(desc, b.Label+": "+b.Text)
	}
	fmt.Fprintf(sb, `<svg class="chart" id="%s" role="img" aria-labelledby="%s-title %s-desc" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg">`,
		esc(id), esc(id), esc(id), w, h)
	fmt.Fprintf(sb, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, esc(id), esc(title), esc(id), esc(strings.Join(desc, "; ")))
	return max
}

// hbarChart draws labelled horizontal bars.
func hbarChart(id, title string, bars []bar) template.HTML {
	const w, rowH, labelW = 420.0, 26.0, 130.0
	h := rowH*float64(len(bars)) + 8
	var sb strings.Builder
	max := chartOpen(&sb, id, title, bars, w, h)
	for i, b := range bars {
		y := 4 + rowH*float64(i)
		bw := 0.0
		if max > 0 {
			bw = (w - labelW - 60) * b.Value / max
		}
		fmt.Fprintf(&sb, `<text x="0" y="%.1f" font-size="12" fill="#1d2330">%s</text>`, y+15, esc(b.Label))
		fmt.Fprintf(&sb, `<rect x="%.0f" y="%.1f" width="%.1f" height="%.0f" fill="%s"><title>%s: %s</title></rect>`,
			labelW, y+2, bw, rowH-8, fill(b.Class), esc(b.Label), esc(b.Text))
		fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" font-size="12" fill="#1d2330">%s</text>`, labelW+bw+6, y+15, esc(b.Text))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) //nolint:gosec // every value above is escaped
}

// columnChart draws vertical bars with the first and last labels on the
// axis (a series over days).
func columnChart(id, title string, bars []bar) template.HTML {
	const w, h, axis = 600.0, 160.0, 18.0
	var sb strings.Builder
	max := chartOpen(&sb, id, title, bars, w, h)
	n := float64(len(bars))
	if n == 0 {
		n = 1
	}
	colW := w / n
	for i, b := range bars {
		bh := 0.0
		if max > 0 {
			bh = (h - axis - 14) * b.Value / max
		}
		x := colW * float64(i)
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
			x+1, h-axis-bh, colW-2, bh, fill(b.Class), esc(b.Label), esc(b.Text))
	}
	fmt.Fprintf(&sb, `<line x1="0" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#98a2b3"/>`, h-axis, w, h-axis)
	if len(bars) > 0 {
		fmt.Fprintf(&sb, `<text x="0" y="%.0f" font-size="12" fill="#4a5262">%s</text>`, h-4, esc(bars[0].Label))
		fmt.Fprintf(&sb, `<text x="%.0f" y="%.0f" font-size="12" fill="#4a5262" text-anchor="end">%s</text>`, w, h-4, esc(bars[len(bars)-1].Label))
		fmt.Fprintf(&sb, `<text x="%.0f" y="12" font-size="12" fill="#4a5262" text-anchor="end">max %s</text>`, w, esc(fmt.Sprintf("%.0f", max)))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) //nolint:gosec // every value above is escaped
}

func fill(class string) string {
	if f, ok := barFills[class]; ok {
		return f
	}
	return barFills[""]
}

func esc(s string) string { return html.EscapeString(s) }

// series is one line of a line chart: a value per label, nil where there
// is none (the line breaks there).
type series struct {
	Name   string
	Values []*float64
	Dashed bool
}

// lineChart draws series over shared labels (weeks), the y axis from 0 to
// the largest value, shown through format. The description states every
// point of every series.
func lineChart(id, title string, labels []string, lines []series, format func(*float64) string) template.HTML {
	const w, h, axis, top = 600.0, 170.0, 18.0, 16.0
	max := 0.0
	desc := make([]string, 0, len(lines))
	for _, l := range lines {
		pts := make([]string, 0, len(labels))
		for i, v := range l.Values {
			if v != nil {
				max = math.Max(max, *v)
			}
			pts = append(pts, labels[i]+" "+format(v))
		}
		desc = append(desc, l.Name+": "+strings.Join(pts, ", "))
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" id="%s" role="img" aria-labelledby="%s-title %s-desc" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg">`,
		esc(id), esc(id), esc(id), w, h)
	fmt.Fprintf(&sb, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, esc(id), esc(title), esc(id), esc(strings.Join(desc, "; ")))
	x := func(i int) float64 {
		if len(labels) < 2 {
			return w / 2
		}
		return 4 + (w-8)*float64(i)/float64(len(labels)-1)
	}
	y := func(v float64) float64 {
		if max <= 0 {
			return h - axis
		}
		return h - axis - (h-axis-top)*v/max
	}
	for _, l := range lines {
		var seg []string
		flush := func() {
			if len(seg) > 1 {
				dash := ""
				if l.Dashed {
					dash = ` stroke-dasharray="5 4"`
				}
				fmt.Fprintf(&sb, `<polyline fill="none" stroke="#1a56db" stroke-width="2"%s points="%s"/>`, dash, strings.Join(seg, " "))
			}
			seg = seg[:0]
		}
		for i, v := range l.Values {
			if v == nil {
				flush()
				continue
			}
			seg = append(seg, fmt.Sprintf("%.1f,%.1f", x(i), y(*v)))
			fmt.Fprintf(&sb, `<circle cx="%.1f" cy="%.1f" r="3" fill="#1a56db"><title>%s %s: %s</title></circle>`,
				x(i), y(*v), esc(l.Name), esc(labels[i]), esc(format(v)))
		}
		flush()
	}
	fmt.Fprintf(&sb, `<line x1="0" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#98a2b3"/>`, h-axis, w, h-axis)
	if len(labels) > 0 {
		fmt.Fprintf(&sb, `<text x="0" y="%.0f" font-size="12" fill="#4a5262">%s</text>`, h-4, esc(labels[0]))
		fmt.Fprintf(&sb, `<text x="%.0f" y="%.0f" font-size="12" fill="#4a5262" text-anchor="end">%s</text>`, w, h-4, esc(labels[len(labels)-1]))
		fmt.Fprintf(&sb, `<text x="%.0f" y="12" font-size="12" fill="#4a5262" text-anchor="end">max %s</text>`, w, esc(format(&max)))
	}
	fmt.Fprintf(&sb, `<text x="4" y="12" font-size="12" fill="#4a5262">solid: p50 · dashed: p90</text>`)
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) //nolint:gosec // every value above is escaped
}
