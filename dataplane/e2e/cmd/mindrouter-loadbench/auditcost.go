package main

import (
	"context"
	"time"
)

// auditRow compares the data plane recording the audit trail (the stack's,
// -audit=on) with one that records nothing (-audit=off), both on the same
// control plane, at one load level.
type auditRow struct {
	workers int // 1: one request at a time
	on, off result
}

// auditCost measures what recording the audit trail adds to a request: at one
// concurrent request and at saturation (the middle of the saturation worker
// counts), through two data planes that differ only in -audit, in alternating
// blocks so that the machine's drift falls on both alike.
func (b *bench) auditCost(ctx context.Context) {
	on := gatewayChat(b.s, modelVLLM, false, 16)
	off := on
	off.url = b.s.dpOffURL + "/v1/chat/completions"
	const blocks = 8

	var ton, toff tally
	var eon, eoff time.Duration
	for range blocks {
		r := sequential(ctx, b.gw, on, b.p.sequentialN/blocks)
		ton.add(r.lat, r.errs, r.firstErr)
		eon += r.elapsed
		r = sequential(ctx, b.gw, off, b.p.sequentialN/blocks)
		toff.add(r.lat, r.errs, r.firstErr)
		eoff += r.elapsed
	}
	b.addAuditRow(auditRow{workers: 1, on: ton.result(eon), off: toff.result(eoff)})

	c := b.p.concurrency[len(b.p.concurrency)/2]
	const satBlocks = 4
	d := max(b.p.duration/satBlocks, time.Second)
	var son, soff tally
	eon, eoff = 0, 0
	for range satBlocks {
		r := closedLoop(ctx, b.gw, on, c, d)
		son.add(r.lat, r.errs, r.firstErr)
		eon += r.elapsed
		r = closedLoop(ctx, b.gw, off, c, d)
		soff.add(r.lat, r.errs, r.firstErr)
		eoff += r.elapsed
	}
	b.addAuditRow(auditRow{workers: c, on: son.result(eon), off: soff.result(eoff)})
}

func (b *bench) addAuditRow(row auditRow) {
	b.logf("audit on vs off, %d workers: on p50 %s p99 %s (%.0f rps), off p50 %s p99 %s (%.0f rps); added p50 %s ms p99 %s ms; errors %d/%d %s%s",
		row.workers, us(row.on.pct(50)), us(row.on.pct(99)), row.on.rps(), us(row.off.pct(50)), us(row.off.pct(99)), row.off.rps(),
		signed(row.on.pct(50)-row.off.pct(50)), signed(row.on.pct(99)-row.off.pct(99)), row.on.errs, row.off.errs, row.on.firstErr, row.off.firstErr)
	b.rep.audit = append(b.rep.audit, row)
}

// renderAudit writes the audit on/off table.
func (r *report) renderAudit(w func(string, ...any)) {
	if len(r.audit) == 0 {
		return
	}
	w("\n#### Audit trail on vs off (two data planes on one control plane, `-audit=on` and `-audit=off`, alternating blocks)\n\n")
	w("| workers | audit | req/s | p50 ms | p99 ms | errors |\n|---:|---|---:|---:|---:|---:|\n")
	for _, a := range r.audit {
		w("| %d | on | %.0f | %s | %s | %d |\n", a.workers, a.on.rps(), f1ms(a.on.pct(50)), f1ms(a.on.pct(99)), a.on.errs)
		w("| %d | off | %.0f | %s | %s | %d |\n", a.workers, a.off.rps(), f1ms(a.off.pct(50)), f1ms(a.off.pct(99)), a.off.errs)
		w("| %d | **added by audit** | | **%s** | **%s** | |\n", a.workers, signed(a.on.pct(50)-a.off.pct(50)), signed(a.on.pct(99)-a.off.pct(99)))
	}
}
