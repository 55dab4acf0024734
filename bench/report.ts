/** Statistics, tables and the SVG chart of the bench's results. */

/** The middle value; for an even count, the mean of the two middle ones. NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Nearest-rank quantile (p in [0, 1]); NaN for no values. */
export function quantile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil(p * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/** A number for a table: a sensible count of digits, thousands separated. */
export function fmt(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return '—'
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2)
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d })
}

export const bytes = (n: number): string => (Math.abs(n) >= 1024 * 1024 ? `${fmt(n / 1024 / 1024, 1)} MiB` : `${fmt(n / 1024, 1)} KiB`)

export const ratio = (value: number, base: number): string => (Number.isFinite(value / base) ? `${fmt(value / base, 2)}×` : '—')

/** A Markdown table (also readable as it is in a terminal). */
/** The markers around a section of RESULTS.md that another script writes (`npm run bench:tabs`): `npm run bench` keeps it. */
export const SECTION = { start: '<!-- bench:tabs -->', end: '<!-- /bench:tabs -->' }
/** The same for `npm run bench:drain`. */
export const DRAIN_SECTION = { start: '<!-- bench:drain -->', end: '<!-- /bench:drain -->' }

/** The section between the markers in `text`, markers included, if any. */
export function section(text: string, markers: { start: string; end: string } = SECTION): string | undefined {
  const start = text.indexOf(markers.start)
  const end = text.indexOf(markers.end)
  return start >= 0 && end > start ? text.slice(start, end + markers.end.length) : undefined
}

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`
  return [line(headers), rule, ...rows.map(line)].join('\n')
}

export interface ChartGroup {
  /** The measure, e.g. 'fan-out time'. */
  label: string
  /** Ratio to plain ws, per series; NaN where it does not apply. */
  values: number[]
  /** A target ratio to mark, if the measure has one. */
  target?: number
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/**
 * Grouped bars of ratios to the baseline (drawn as the line at 1). Lower is
 * better for every measure; bars past the top of the scale are cut and keep
 * their value as a label.
 */
export function chart(title: string, subtitle: string, series: { name: string; color: string }[], groups: ChartGroup[]): string {
  const W = 760
  const H = 360
  const left = 48
  const right = 16
  const top = 64
  const bottom = 64
  const plotW = W - left - right
  const plotH = H - top - bottom
  const finite = groups.flatMap((g) => [...g.values, g.target ?? 0]).filter(Number.isFinite)
  const max = Math.min(6, Math.max(2, Math.ceil(Math.max(...finite) * 2) / 2))
  const y = (v: number) => top + plotH - (Math.min(v, max) / max) * plotH
  const groupW = plotW / groups.length
  const barW = Math.min(40, (groupW * 0.7) / series.length)
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12" role="img">`,
  )
  out.push(`<title>${esc(title)}</title>`)
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`)
  out.push(`<text x="${left}" y="22" font-size="15" font-weight="600">${esc(title)}</text>`)
  out.push(`<text x="${left}" y="40" fill="#555">${esc(subtitle)}</text>`)
  for (let v = 0; v <= max + 1e-9; v += max > 4 ? 1 : 0.5) {
    out.push(`<line x1="${left}" x2="${W - right}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`)
    out.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#777">${v}×</text>`)
  }
  groups.forEach((g, gi) => {
    const x0 = left + gi * groupW + (groupW - barW * series.length) / 2
    if (g.target !== undefined) {
      const t = y(g.target)
      out.push(
        `<line x1="${x0 - 6}" x2="${x0 + barW * series.length + 6}" y1="${t}" y2="${t}" stroke="#c00" stroke-width="2" stroke-dasharray="4 3"/>`,
      )
    }
    g.values.forEach((v, si) => {
      const x = x0 + si * barW
      if (!Number.isFinite(v)) {
        out.push(`<text x="${x + barW / 2}" y="${y(0) - 4}" text-anchor="middle" fill="#999">n/a</text>`)
        return
      }
      const cut = v > max
      out.push(
        `<rect x="${x + 2}" y="${y(v)}" width="${barW - 4}" height="${y(0) - y(v)}" fill="${series[si]!.color}"${cut ? ' fill-opacity="0.7"' : ''}/>`,
      )
      out.push(
        `<text x="${x + barW / 2}" y="${y(v) - 4}" text-anchor="middle" font-size="11" stroke="#fff" stroke-width="3" paint-order="stroke">${v.toFixed(2)}${cut ? '↑' : ''}</text>`,
      )
    })
    const lines = g.label.split('\n')
    lines.forEach((l, li) => {
      out.push(`<text x="${left + gi * groupW + groupW / 2}" y="${y(0) + 18 + li * 14}" text-anchor="middle">${esc(l)}</text>`)
    })
  })
  out.push(`<line x1="${left}" x2="${W - right}" y1="${y(1)}" y2="${y(1)}" stroke="#333" stroke-width="1.5"/>`)
  let lx = left
  for (const s of series) {
    out.push(`<rect x="${lx}" y="${H - 20}" width="12" height="12" fill="${s.color}"/>`)
    out.push(`<text x="${lx + 16}" y="${H - 10}">${esc(s.name)}</text>`)
    lx += 24 + s.name.length * 7
  }
  out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${H - 14}" y2="${H - 14}" stroke="#c00" stroke-width="2" stroke-dasharray="4 3"/>`)
  out.push(`<text x="${lx + 22}" y="${H - 10}">belfry's target (≤ 1.25×)</text>`)
  lx += 200
  out.push(`<line x1="${lx}" x2="${lx + 18}" y1="${H - 14}" y2="${H - 14}" stroke="#333" stroke-width="1.5"/>`)
  out.push(`<text x="${lx + 22}" y="${H - 10}">plain ws = 1</text>`)
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
