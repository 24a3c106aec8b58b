// Package report turns measured targets into what people read: the JSON
// document of DESIGN.md (stable; fields are only ever added), a text table
// for terminals, and one self-contained HTML page with inline SVG plots
// (latency over time and a latency histogram per target).
//
// It also holds the report maths: spreads (min, median, max) over rounds
// and the ratios between targets. It must never send traffic, and the HTML
// must never load anything from outside the page (no scripts, fonts or
// styles from elsewhere).
package report
