/** The benchmark's results: figures with targets, the JSON file, the Markdown page and the console table. */
import type { CostNote } from './cost.ts';
import type { MachineDescription } from './machine.ts';
import type { Stat } from './stats.ts';

/** A target a figure must meet: `median op limit`. */
export interface Target {
  op: '<=' | '<';
  limit: number;
  met: boolean;
}

/** One measured figure: the median over rounds, with min and max. */
export interface Figure {
  id: string;
  group: string;
  label: string;
  unit: string;
  stat: Stat;
  target?: Target;
  note?: string;
}

export interface BenchResults {
  version: 1;
  date: string;
  mode: 'full' | 'quick';
  machine: MachineDescription;
  /** The sizes and counts actually used (quick mode shrinks them). */
  params: Record<string, number | string>;
  figures: Figure[];
  /** Targets missed, with their measured medians. */
  missed: string[];
  /** Figures that could not be measured, and why. */
  missing: string[];
  cost?: CostNote;
  notes: string[];
  /** node's flags in a process running a project bundle, as that process reported them (cold start group). */
  projectNodeArgs?: string[];
}

/** Builds a figure, checking the median against the target if there is one. */
export function figure(
  spec: Omit<Figure, 'target'> & { target?: { op: Target['op']; limit: number } },
): Figure {
  const { target, ...rest } = spec;
  if (target === undefined) return rest;
  const value = spec.stat.median;
  const met = target.op === '<=' ? value <= target.limit : value < target.limit;
  return { ...rest, target: { ...target, met } };
}

function formatNumber(value: number, unit: string): string {
  if (!Number.isFinite(value)) return String(value);
  if (unit === 'B') return Math.round(value).toLocaleString('en-US');
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 10 ? 2 : 3;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function targetText(f: Figure): string {
  if (f.target === undefined) return '';
  return `${f.target.op} ${f.target.limit} ${f.target.met ? 'met' : 'MISSED'}`;
}

function rows(results: BenchResults): string[][] {
  return results.figures.map((f) => [
    f.group,
    f.label,
    f.unit,
    formatNumber(f.stat.median, f.unit),
    formatNumber(f.stat.min, f.unit),
    formatNumber(f.stat.max, f.unit),
    String(f.stat.n),
    targetText(f),
  ]);
}

const HEADER = ['group', 'figure', 'unit', 'median', 'min', 'max', 'n', 'target'];

/** A fixed-width table for the console. */
export function formatTable(results: BenchResults): string {
  const all = [HEADER, ...rows(results)];
  const widths = HEADER.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const numeric = new Set([3, 4, 5, 6]);
  return all
    .map((r) =>
      r
        .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const usd = (value: number): string => `$${value < 0.01 ? value.toFixed(5) : value.toFixed(4)}`;

/** The costliest line of the one-tenant case and its share of the total. */
function largest(cost: CostNote): string {
  const [top] = [...cost.singleTenant.lines].sort((a, b) => b.usd - a.usd);
  if (top === undefined) return 'none';
  return `${top.item}, ${((100 * top.usd) / cost.singleTenant.totalUsd).toFixed(0)}% of the one-tenant total`;
}

function costMarkdown(cost: CostNote): string[] {
  const table = (title: string, part: CostNote['singleTenant']) => [
    `**${title}**`,
    '',
    '| item | per tenant per month | USD |',
    '|---|---:|---:|',
    ...part.lines.map((line) => `| ${line.item} | ${line.quantity} | ${usd(line.usd)} |`),
    `| **total** | | **${usd(part.totalUsd)}** |`,
    '',
  ];
  const i = cost.inputs;
  const p = cost.prices;
  return [
    '## Cost per tenant per month',
    '',
    `At the default schedule (every ${i.scheduleMinutes} minutes: ${cost.runsPerMonth.toFixed(0)} snapshots in a ` +
      `730-hour month), ${i.memoryMb} MB arm64 Lambda, ${i.retentionDays}-day retention ` +
      `(${cost.storedItems.toLocaleString('en-US')} snapshots kept per tenant once the table is full). ` +
      `Measured inputs: a snapshot item is ${i.itemBytes} B by DynamoDB's rules (+${i.storageOverheadBytes} B ` +
      `storage overhead per item); each snapshot makes ${i.writesPerSnapshot} write(s), ${i.readsPerSnapshot} ` +
      `strongly consistent read(s) of under 4 KB and ${i.secretReadsPerSnapshot} Secrets Manager read(s), ` +
      `and logs ${Math.round(i.logBytesPerSnapshot)} B.`,
    '',
    `Duration (measured on the snapshot fan-out, KooDrive simulated at 100 ms, local DynamoDB and Secrets Manager): ` +
      `a one-tenant run is billed ${Math.ceil(i.singleTenantDurationMs)} ms, the time one lane spends per tenant; ` +
      `with ${i.sharedTenants} tenants a run's wall time is ${i.sharedDurationMsPerTenant.toFixed(1)} ms per tenant.`,
    '',
    `Largest item: ${largest(cost)}.`,
    '',
    ...table('One tenant per deployment', cost.singleTenant),
    ...table(`One tenant of ${i.sharedTenants} (shared invocations)`, cost.shared),
    `Prices (${p.region}, list, no free tier; ${p.asOf}): Lambda $${p.lambdaRequestPerMillion} per million ` +
      `requests and $${p.lambdaArmGbSecond} per GB-s (arm64); DynamoDB on-demand $${p.dynamoWriteRequestPerMillion} ` +
      `per million write and $${p.dynamoReadRequestPerMillion} per million read request units, ` +
      `$${p.dynamoStorageGbMonth} per GB-month; Secrets Manager $${p.secretPerMonth} per secret-month and ` +
      `$${p.secretsApiCallsPer10k} per 10,000 calls; CloudWatch Logs $${p.logsIngestionPerGb} per GB ingested, ` +
      `$${p.cloudWatchMetricPerMonth} per custom metric-month (the first 10,000), $${p.cloudWatchAlarmMetricPerMonth} ` +
      `per alarm metric-month (a Metrics Insights alarm: each series it evaluates), $${p.cloudWatchDashboardPerMonth} ` +
      'per dashboard-month past the first three. ' +
      'API Gateway and history/allocation requests are on demand and not included; TTL deletions are free.',
    '',
  ];
}

/** The Markdown page: machine, figures with targets, missed targets, cost note, notes. */
export function formatMarkdown(results: BenchResults): string {
  const m = results.machine;
  const lines = [
    `# Benchmark results (${results.mode})`,
    '',
    `- Date: ${results.date}`,
    `- Machine: ${m.cpuModel}, ${m.cores} cores, ${(m.memoryBytes / 1024 ** 3).toFixed(1)} GiB memory, ` +
      `${m.platform} ${m.arch}`,
    `- Node: ${m.node}`,
    ...(results.projectNodeArgs === undefined
      ? []
      : [`- Project processes ran as: \`node ${results.projectNodeArgs.join(' ')}\``]),
    `- Parameters: ${Object.entries(results.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
    '',
    'Each figure is the median over interleaved rounds (project, peer, baseline alternating) with min and max; ' +
      'ratios are computed within each round, then summarized.',
    '',
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map((_, i) => (i >= 3 && i <= 6 ? '---:' : '---')).join('|')}|`,
    ...rows(results).map((r) => `| ${r.join(' | ')} |`),
    '',
  ];
  if (results.missed.length > 0)
    lines.push('## Missed targets', '', ...results.missed.map((m) => `- ${m}`), '');
  if (results.missing.length > 0)
    lines.push('## Not measured', '', ...results.missing.map((m) => `- ${m}`), '');
  if (results.cost !== undefined) lines.push(...costMarkdown(results.cost));
  if (results.notes.length > 0) lines.push('## Notes', '', ...results.notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}
