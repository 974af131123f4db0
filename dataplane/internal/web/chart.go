package web

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A line chart drawn on the server as inline SVG: no script, no library. The
// template writes the markup (so every label is escaped by html/template);
// this file only computes coordinates, which are numbers.

// Chart geometry in SVG user units; the SVG scales to its container's width.
const (
	chartW, chartH          = 640.0, 220.0
	chartLeft, chartRight   = 60.0, 12.0
	chartTop, chartBottom   = 12.0, 30.0
	chartMaxSeries          = 8
	chartYTicks             = 4
	chartGapFactor          = 2.5 // a step this many resolutions wide is a gap in the line
	chartTableMaxRows       = 400
	chartTimeLayoutShort    = "15:04"
	chartTimeLayoutLong     = "01-02 15:04"
	chartTimeLayoutDays     = "01-02"
	chartRangeForLongLabels = 24 * time.Hour
)

// chartInput is one series to draw: a label (a GPU, a node) and its points.
type chartInput struct {
	Label  string
	Points []chartPoint
}

type chartPoint struct {
	At    time.Time
	Value float64
}

// chart is what the template draws.
type chart struct {
	ID, Title, Desc, Unit string
	Width, Height         float64
	// PlotX etc. frame the plot area.
	PlotX, PlotY, PlotW, PlotH float64
	// MidX and MidY centre the "no samples" note.
	MidX, MidY     float64
	Series         []chartSeries
	YTicks, XTicks []chartTick
	Empty          bool
	// Table is the data behind the chart, for screen readers and anyone who
	// wants the numbers: one row per time, one column per series.
	Columns []string
	Rows    []chartRow
}

type chartSeries struct {
	Label, Class string
	// Path is the SVG path: one M…L… run per stretch without a gap.
	Path string
	// Dots mark points that stand alone between gaps (a path of one point
	// draws nothing).
	Dots []chartTick
}

type chartTick struct {
	X, Y  float64
	Label string
	// Anchor is the label's text-anchor: the last time label ends at the
	// right edge rather than running past it.
	Anchor string
}

type chartRow struct {
	At     string
	Values []string
}

// buildChart scales the series into the plot: time over [from, to) on x,
// values over [0, yMax] on y, where yMax is fixedMax when it is positive
// (percentages) and otherwise a round number above the largest value. Points
// further apart than chartGapFactor resolutions break the line.
func buildChart(id, title, unit string, from, to time.Time, step time.Duration, fixedMax float64, scale func(float64) float64, in []chartInput) chart {
	c := chart{ID: id, Title: title, Unit: unit, Width: chartW, Height: chartH,
		PlotX: chartLeft, PlotY: chartTop, PlotW: chartW - chartLeft - chartRight, PlotH: chartH - chartTop - chartBottom}
	if scale == nil {
		scale = func(v float64) float64 { return v }
	}
	if len(in) > chartMaxSeries {
		in = in[:chartMaxSeries]
	}
	maxV, points := 0.0, 0
	for _, s := range in {
		for _, p := range s.Points {
			if v := scale(p.Value); !math.IsNaN(v) && !math.IsInf(v, 0) {
				maxV = max(maxV, v)
			}
			points++
		}
	}
	c.Empty = points == 0
	c.MidX, c.MidY = c.PlotX+c.PlotW/2, c.PlotY+c.PlotH/2
	yMax := fixedMax
	if yMax <= 0 {
		yMax = niceCeil(maxV)
	}
	span := to.Sub(from)
	if span <= 0 {
		span = time.Hour
	}
	x := func(t time.Time) float64 {
		f := float64(t.Sub(from)) / float64(span)
		return c.PlotX + clamp01(f)*c.PlotW
	}
	y := func(v float64) float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		return c.PlotY + c.PlotH - clamp01(v/yMax)*c.PlotH
	}
	for i := 0; i <= chartYTicks; i++ {
		v := yMax * float64(i) / chartYTicks
		c.YTicks = append(c.YTicks, chartTick{X: c.PlotX, Y: y(v), Label: formatTick(v)})
	}
	layout := chartTimeLayoutShort
	switch {
	case span > 3*24*time.Hour:
		layout = chartTimeLayoutDays
	case span > chartRangeForLongLabels/2:
		layout = chartTimeLayoutLong
	}
	for i := 0; i <= 4; i++ {
		t := from.Add(span * time.Duration(i) / 4)
		anchor := "middle"
		if i == 4 {
			anchor = "end"
		}
		c.XTicks = append(c.XTicks, chartTick{X: x(t), Y: c.PlotY + c.PlotH, Label: t.UTC().Format(layout), Anchor: anchor})
	}
	gap := time.Duration(float64(step) * chartGapFactor)
	rows := map[int64][]string{}
	var times []int64
	for si, s := range in {
		cs := chartSeries{Label: s.Label, Class: "s" + strconv.Itoa(si)}
		var b strings.Builder
		run := 0
		for pi, p := range s.Points {
			v := scale(p.Value)
			if pi > 0 && step > 0 && p.At.Sub(s.Points[pi-1].At) > gap {
				if run == 1 {
					cs.Dots = append(cs.Dots, lastDot(s.Points[pi-1], scale, x, y))
				}
				run = 0
			}
			if run == 0 {
				fmt.Fprintf(&b, "M%.1f %.1f", x(p.At), y(v))
			} else {
				fmt.Fprintf(&b, "L%.1f %.1f", x(p.At), y(v))
			}
			run++
			k := p.At.Unix()
			if _, ok := rows[k]; !ok {
				rows[k] = make([]string, len(in))
				times = append(times, k)
			}
			rows[k][si] = formatValue(v)
		}
		if run == 1 {
			cs.Dots = append(cs.Dots, lastDot(s.Points[len(s.Points)-1], scale, x, y))
		}
		cs.Path = b.String()
		c.Series = append(c.Series, cs)
		c.Columns = append(c.Columns, s.Label)
	}
	slices.Sort(times)
	if len(times) > chartTableMaxRows {
		times = times[len(times)-chartTableMaxRows:]
	}
	for _, k := range times {
		vals := rows[k]
		for i := range vals {
			if vals[i] == "" {
				vals[i] = "—"
			}
		}
		c.Rows = append(c.Rows, chartRow{At: time.Unix(k, 0).UTC().Format("2006-01-02 15:04 UTC"), Values: vals})
	}
	c.Desc = chartDesc(title, unit, in, scale, from, to)
	return c
}

func lastDot(p chartPoint, scale func(float64) float64, x func(time.Time) float64, y func(float64) float64) chartTick {
	return chartTick{X: x(p.At), Y: y(scale(p.Value))}
}

// chartDesc sums the chart up in words for <desc>: each series' latest,
// lowest and highest value.
func chartDesc(title, unit string, in []chartInput, scale func(float64) float64, from, to time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) from %s to %s.", title, unit, from.UTC().Format("2006-01-02 15:04"), to.UTC().Format("2006-01-02 15:04 UTC"))
	any := false
	for _, s := range in {
		if len(s.Points) == 0 {
			continue
		}
		any = true
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, p := range s.Points {
			v := scale(p.Value)
			lo, hi = min(lo, v), max(hi, v)
		}
		fmt.Fprintf(&b, " %s: latest %s, lowest %s, highest %s.", s.Label, formatValue(scale(s.Points[len(s.Points)-1].Value)), formatValue(lo), formatValue(hi))
	}
	if !any {
		b.WriteString(" No samples in this range.")
	}
	return b.String()
}

// niceCeil is the smallest of 1, 2, 2.5, 5 × 10ⁿ at or above v (1 for v ≤ 0).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func clamp01(f float64) float64 { return min(max(f, 0), 1) }

func formatTick(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

func formatValue(v float64) string {
	switch {
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// figure formats an amount (kWh, money) with two decimals, or with as many
// as show its first three digits when it is below 1: 0.0000364, not 0.00.
func figure(v float64) string {
	a := math.Abs(v)
	if a == 0 || a >= 1 || math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', min(int(-math.Floor(math.Log10(a)))+2, 10), 64)
}
