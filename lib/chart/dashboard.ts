/**
 * The operator's dashboard: one self-contained HTML page (inline CSS, no script, no external asset)
 * with each tenant's allocation chart. Links are relative, so the page works under an API stage
 * path, a custom domain's base path, or inside another page's frame.
 */
import type { Allocation } from '../types.ts';
import { escapeXml, formatGB, formatInstant, groupThousands } from './svg.ts';

export interface DashboardInput {
  /** Tenant ids (the page orders them fullest first, by {@link fullestFirst}). */
  tenantIds: readonly string[];
  /** Each tenant's newest stored snapshot, as read; a tenant missing here shows as unavailable. */
  newest: ReadonlyMap<string, NewestSnapshot>;
  /** The range every chart shows. */
  from: Date;
  to: Date;
  /** Chart size in CSS pixels (the SVG scales down on narrow screens). */
  chartWidth?: number;
  chartHeight?: number;
  /**
   * Charts drawn inside the page, by tenant id (the page then loads nothing): the SVG, or why there is
   * none. Without it, each chart is an image loaded from its route.
   */
  charts?: ReadonlyMap<string, InlineChart>;
}

/** A chart inside the page: its SVG document, or the reason it could not be drawn. */
export type InlineChart = { svg: string } | { error: string };

/** A tenant's newest stored snapshot (its totals and time), none stored yet, or a read that failed. */
export type NewestSnapshot =
  | { state: 'stored'; snapshot: Pick<Allocation, 'observedAt' | 'totals'> }
  | { state: 'none' }
  | { state: 'unavailable' };

const UNAVAILABLE: NewestSnapshot = { state: 'unavailable' };

/** Where a tenant sorts: a known ratio, then a null ratio (total 0), then no snapshot, then a failed read. */
function rankOf(newest: NewestSnapshot): { group: number; ratio: number } {
  if (newest.state === 'none') return { group: 2, ratio: 0 };
  if (newest.state === 'unavailable') return { group: 3, ratio: 0 };
  const ratio = newest.snapshot.totals.allocatedRatio;
  return ratio === null || !Number.isFinite(ratio) ? { group: 1, ratio: 0 } : { group: 0, ratio };
}

/**
 * The tenants fullest first: by the totals' allocatedRatio of the newest snapshot, highest first (so
 * over-allocated on top); then those whose total is 0 (a null ratio), those with no snapshot yet, and
 * those whose snapshot could not be read; ties by tenant id.
 */
export function fullestFirst(
  tenantIds: readonly string[],
  newest: ReadonlyMap<string, NewestSnapshot>,
): string[] {
  const ranked = tenantIds.map((tenantId) => ({ tenantId, ...rankOf(newest.get(tenantId) ?? UNAVAILABLE) }));
  ranked.sort(
    (a, b) =>
      a.group - b.group ||
      b.ratio - a.ratio ||
      (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0),
  );
  return ranked.map((entry) => entry.tenantId);
}

/** The in-page anchor of a tenant's section (tenant ids are letters, digits, `_` and `-`). */
function anchorOf(tenantId: string): string {
  return `tenant-${tenantId}`;
}

/** An SVG document as an element of the HTML page (without an XML declaration, which HTML does not take). */
function inlineSvg(svg: string): string {
  return svg.startsWith('<?xml') ? svg.slice(svg.indexOf('?>') + 2).trimStart() : svg;
}

/** The relative URL of a tenant's chart (`tenants/{id}/allocation/history.svg?from=&to=`). */
export function chartPath(tenantId: string, range: { from: Date; to: Date }): string {
  const query = new URLSearchParams({ from: range.from.toISOString(), to: range.to.toISOString() });
  return `tenants/${encodeURIComponent(tenantId)}/allocation/history.svg?${query.toString()}`;
}

function historyPath(tenantId: string, range: { from: Date; to: Date }): string {
  const query = new URLSearchParams({ from: range.from.toISOString(), to: range.to.toISOString() });
  return `tenants/${encodeURIComponent(tenantId)}/allocation/history?${query.toString()}`;
}

/**
 * `68.1 %`, `1,234.5 %`: one decimal, thousands grouped. Not Intl.NumberFormat: building one at import
 * loads ICU's number data, ~10 ms on every cold start of the chart function.
 */
function percentText(ratio: number): string {
  const [whole = '0', fraction = '0'] = (ratio * 100).toFixed(1).split('.');
  return `${groupThousands(whole)}.${fraction} %`;
}

/** The "Fullest first" table: one row per tenant, in the order given, each linking to its chart. */
function fullestTable(tenantIds: readonly string[], newest: ReadonlyMap<string, NewestSnapshot>): string {
  const rows = tenantIds.map((tenantId) => {
    const tenant = `<th scope="row"><a href="#${escapeXml(anchorOf(tenantId))}">${escapeXml(tenantId)}</a></th>`;
    const entry = newest.get(tenantId) ?? UNAVAILABLE;
    if (entry.state === 'none') return `<tr>${tenant}<td colspan="4">no snapshot yet</td></tr>`;
    if (entry.state === 'unavailable')
      return `<tr class="unavailable">${tenant}<td colspan="4">unavailable</td></tr>`;
    const { totals, observedAt } = entry.snapshot;
    const ratio =
      totals.allocatedRatio === null || !Number.isFinite(totals.allocatedRatio)
        ? 'no total'
        : percentText(totals.allocatedRatio);
    const at = Date.parse(observedAt);
    const time = Number.isNaN(at)
      ? escapeXml(observedAt)
      : `<time datetime="${escapeXml(new Date(at).toISOString())}">${escapeXml(formatInstant(at))}</time>`;
    return `<tr>${tenant}<td class="num">${escapeXml(
      `${formatGB(totals.allocatedGB)} of ${formatGB(totals.totalGB)} GB`,
    )}</td><td class="num pct">${escapeXml(ratio)}</td>${totals.overAllocated ? '<td class="over">over-allocated</td>' : '<td></td>'}<td>${time}</td></tr>`;
  });
  // A region of its own: a long table scrolls inside it (the charts stay near the top), and on a
  // phone it scrolls sideways rather than widening the page; focusable, so a keyboard can scroll it.
  return `<div class="fullest" role="region" aria-labelledby="fullest-caption" tabindex="0">
<table>
<caption id="fullest-caption">Fullest first</caption>
<thead><tr><th scope="col">Tenant</th><th scope="col" class="num">Allocated of total</th><th scope="col" class="num">Ratio</th><th scope="col">State</th><th scope="col">Newest snapshot</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
</div>`;
}

const STYLE = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 20px 32px; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif; color: #1f2328; background: #f6f8fa; }
h1 { font-size: 1.4rem; margin: 0 0 4px; }
header p { margin: 0 0 16px; color: #57606a; max-width: 70em; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(600px, 100%), 1fr)); gap: 20px; }
section { position: relative; min-width: 0; background: #fff; border: 1px solid #d8dee4; border-radius: 8px; padding: 10px 12px 12px; }
h2 { font-size: 1.1rem; margin: 0 0 4px; }
.chart-shown { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
nav { font-size: 0.9rem; margin: 0 0 6px; }
nav a { color: #0969da; margin-right: 14px; }
figure { margin: 0; }
img, figure > svg { display: block; width: 100%; height: auto; border: 0; }
.chart-error { margin: 0; padding: 12px; border-left: 4px solid #cf222e; background: #fff8f8; }
.fullest { max-height: 60vh; overflow: auto; margin: 0 0 20px; background: #fff; border: 1px solid #d8dee4; border-radius: 8px; }
.fullest table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
.fullest caption { text-align: left; font-weight: 600; font-size: 1.1rem; padding: 8px 12px 4px; }
.fullest th, .fullest td { padding: 4px 12px; text-align: left; vertical-align: top; border-top: 1px solid #eaeef2; }
.fullest thead th { position: sticky; top: 0; background: #f6f8fa; border-top: 0; border-bottom: 1px solid #d8dee4; }
.fullest a { color: #0969da; }
.fullest .num { text-align: right; font-variant-numeric: tabular-nums; }
.fullest .pct { white-space: nowrap; }
.fullest td.over { color: #cf222e; font-weight: 600; }
.fullest .unavailable td { color: #57606a; font-style: italic; }
@media (max-width: 480px) { body { padding: 12px 10px 24px; } .fullest table { font-size: 0.82rem; } .fullest th, .fullest td { padding: 4px 6px; } }
footer { margin: 20px 0 0; color: #57606a; font-size: 0.85rem; }
`.trim();

/**
 * The page's Content-Security-Policy: its own CSS, images (charts) from its own origin, nothing else. The
 * handler sends it as a header; the page carries it too, so that a page saved with `?inline=1` and opened
 * from a file or a wiki keeps it (a meta policy cannot hold frame-ancestors, which this one leaves out).
 */
export const PAGE_POLICY =
  "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/** Renders the dashboard page; every tenant id is escaped (the id pattern already excludes markup). */
export function renderDashboard(input: DashboardInput): string {
  const width = input.chartWidth ?? 800;
  const height = input.chartHeight ?? 400;
  const range = { from: input.from, to: input.to };
  const figure = (tenantId: string, chart: string): string => {
    const inline = input.charts?.get(tenantId);
    if (inline === undefined) {
      return `<figure><img src="${escapeXml(chart)}" width="${width}" height="${height}" alt="${escapeXml(`Chart of the space allocated and total for tenant ${tenantId}, per space type and in total, from ${formatInstant(input.from.getTime())} to ${formatInstant(input.to.getTime())}, with a forecast where its snapshots give one.`)}" loading="lazy" decoding="async"></figure>`;
    }
    // The chart's own title and description name it for screen readers.
    if ('svg' in inline) return `<figure>${inlineSvg(inline.svg)}</figure>`;
    return `<p class="chart-error" role="status">${escapeXml(inline.error)}</p>`;
  };
  const tenantIds = fullestFirst(input.tenantIds, input.newest);
  const sections = tenantIds.map((tenantId) => {
    // Two namespaces: `tenant-<id>` for the section (the table's links), `heading-<id>` for its heading.
    const id = `heading-${tenantId}`;
    const chart = chartPath(tenantId, range);
    const name = escapeXml(tenantId);
    // A chart names its tenant in its own heading: the section's heading is then for screen readers
    // and the page's outline only. Where no chart is drawn, it shows.
    const inline = input.charts?.get(tenantId);
    const shown = inline === undefined || 'svg' in inline;
    return `<section id="${escapeXml(anchorOf(tenantId))}" aria-labelledby="${escapeXml(id)}" data-tenant="${name}">
<h2 id="${escapeXml(id)}"${shown ? ' class="chart-shown"' : ''}>${name}</h2>
<nav aria-label="${escapeXml(`Links for ${tenantId}`)}"><a href="${escapeXml(chart)}">Chart (SVG)</a><a href="${escapeXml(historyPath(tenantId, range))}">History (JSON)</a><a href="tenants/${escapeXml(encodeURIComponent(tenantId))}/allocation">Current allocation (JSON)</a></nav>
${figure(tenantId, chart)}
</section>`;
  });
  const body =
    sections.length === 0
      ? '<section><p>No tenant is configured (KOODRIVE_TENANTS).</p></section>'
      : sections.join('\n');
  const table = tenantIds.length === 0 ? '' : `${fullestTable(tenantIds, input.newest)}\n`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${PAGE_POLICY}">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<title>KooDrive allocation</title>
<style>
${STYLE}
</style>
</head>
<body>
<header>
<h1>KooDrive allocation</h1>
<p>Allocated and total space of each tenant from ${escapeXml(formatInstant(input.from.getTime()))} to ${escapeXml(formatInstant(input.to.getTime()))}. Solid lines are allocated space, faint lines the total, dashed lines the forecast; dotted lines mark the allocation thresholds of all spaces together, the ticks at the right edge of a chart those of each space type. The table lists the tenants fullest first, by the share of their total space allocated in their newest snapshot; the charts follow its order.</p>
</header>
${table}<main>
${body}
</main>
<footer><p>Generated ${escapeXml(formatInstant(input.to.getTime()))}. Times in UTC.</p></footer>
</body>
</html>
`;
}
