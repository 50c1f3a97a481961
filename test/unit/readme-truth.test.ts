/**
 * The names the README gives operators to search for at 3 a.m. — log messages and their fields and
 * levels, metric names, alarm names, error codes, settings — against the code that emits or reads them.
 * A message or metric renamed in the code (or misspelt in the README) makes the README send an operator
 * looking for a string that never appears: each check here fails, naming the string, when that happens.
 *
 * What counts as a name (so that ordinary backticked words are not taken for one):
 * - a log message: a backticked phrase of two or more words of letters (a `;` clause allowed), starting
 *   lower-case or with `KooDrive`/`SQS`, not a command (`npm start`) and not another program's message
 *   (FOREIGN_MESSAGES). Its level, where the README states one: `msg` (WARN, …), or a `warn` line … `msg`
 *   in the same clause. Its fields, where the README lists them: `msg` (`a`, `b`), `msg` (WARN, with `a`),
 *   `msg` [log line [says so]] with `a`.
 * - a metric: a PascalCase name in the "**Metrics**" paragraph that is not a dimension (after "per" or
 *   "dimension"); anywhere, `X` with dimension `Y`, counted/count in `X`, and the names in the
 *   parenthesis after "metrics of its own".
 * - an alarm: alarm `x` (and `x` / `y`), `x` alarm, and any `allocated-ratio-…`, with `<placeholder>` and
 *   `…` standing for any text.
 * - an error code: the errors table's `code` column, and anywhere a SCREAMING_SNAKE name whose last word
 *   ends a contract code (`…_ERROR`, `…_TIMEOUT`, …) or `X_*`.
 * - a setting: the Configuration table's variable and stage parameter columns, and `--param name=…`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { coldStartMetricDocument } from '../../lib/cold-start-metric.ts';
import { AppError, ERROR_CODES } from '../../lib/errors.ts';
import { describeError } from '../../lib/logger.ts';
import { METRIC_NAMES } from '../../lib/metrics.ts';
import { type MonitoringSettings, monitoringResources } from '../../serverless/monitoring.ts';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');

/** The README without its fenced code blocks, whose backticks are not inline code. */
const README = read('README.md').replace(/^[ \t]*```[\s\S]*?^[ \t]*```[ \t]*$/gm, '');
const SERVERLESS_YML = read('serverless.yml');

/** Whitespace as one space: a backticked name may be wrapped across lines. */
const flat = (text: string) => text.replace(/\s+/g, ' ');
const FLAT_README = flat(README);

/** Every inline code span of `text` (whitespace collapsed). */
const spans = (text: string): string[] => [...flat(text).matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');

/** A README section, from its `## ` heading to the next. */
function section(heading: string): string {
  const start = README.indexOf(`\n## ${heading}`);
  if (start < 0) throw new Error(`README has no section '## ${heading}'`);
  const end = README.indexOf('\n## ', start + 1);
  return README.slice(start, end < 0 ? undefined : end);
}

/** The rows of the first Markdown table after `header` in `text`, split into trimmed cells. */
function tableRows(text: string, header: string): string[][] {
  const start = text.indexOf(header);
  if (start < 0) throw new Error(`README has no table headed '${header}'`);
  const rows: string[][] = [];
  for (const line of text.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
  }
  return rows;
}

function sourceFiles(...dirs: string[]): Map<string, string> {
  const files = new Map<string, string>();
  for (const dir of dirs) {
    for (const entry of readdirSync(new URL(dir, ROOT), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
      const path = relative(fileURLToPath(ROOT), join(entry.parentPath, entry.name));
      files.set(path, readFileSync(join(entry.parentPath, entry.name), 'utf8'));
    }
  }
  return files;
}

const SOURCES = sourceFiles('handlers', 'lib');

// ---------------------------------------------------------------------------------------------- logs

/** Another program's message the README quotes: node's refusal of a flag, in Lambda's INIT log. */
const FOREIGN_MESSAGES = new Set(['bad option']);
const COMMANDS = new Set(['npm', 'npx', 'node', 'serverless', 'aws', 'curl', 'awscurl', 'sh', 'bash']);

function isLogMessage(span: string): boolean {
  if (!/^[A-Za-z]+(?:;? [A-Za-z]+)+$/.test(span)) return false;
  const first = span.split(' ')[0] ?? '';
  if (!/^[a-z]/.test(first) && first !== 'KooDrive' && first !== 'SQS') return false;
  return !COMMANDS.has(first) && !FOREIGN_MESSAGES.has(span);
}

interface LogCall {
  file: string;
  line: number;
  level: string;
  message: string;
  /** The call's arguments after the message, as written. */
  args: string;
}

/** The text from `open` (an opening bracket) to its matching close, brackets inside strings ignored. */
function balanced(text: string, open: number): string {
  const pairs: Record<string, string> = { '(': ')', '{': '}', '[': ']' };
  const stack: string[] = [];
  let quote: string | undefined;
  for (let i = open; i < text.length; i++) {
    const c = text[i] ?? '';
    if (quote !== undefined) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"' || c === '`') quote = c;
    else if (pairs[c] !== undefined) stack.push(pairs[c]);
    else if (c === stack[stack.length - 1]) {
      stack.pop();
      if (stack.length === 0) return text.slice(open, i + 1);
    }
  }
  throw new Error(`unbalanced bracket at ${open}`);
}

/** Every logger call in handlers/ and lib/ whose message is a string literal. */
const LOG_CALLS: LogCall[] = [...SOURCES].flatMap(([file, text]) =>
  [
    ...text.matchAll(
      /\b(?:logger\??|requestLog)\.(debug|info|warn|error)\(\s*(['"])((?:(?!\2)[^\\\n]|\\.)*)\2/g,
    ),
  ].map((m) => {
    const open = (m.index ?? 0) + m[0].indexOf('(');
    const call = balanced(text, open);
    return {
      file,
      line: text.slice(0, m.index).split('\n').length,
      level: (m[1] ?? '').toUpperCase(),
      message: m[3] ?? '',
      args: call.slice(call.indexOf(m[3] ?? '') + (m[3] ?? '').length + 1, -1),
    };
  }),
);

/** The keys describeError can give a line: an error of ours with everything, and any other error. */
const DESCRIBE_ERROR_KEYS = (() => {
  const ours = new AppError('UPSTREAM_ERROR', 'm', {
    cause: new Error('c'),
    upstreamCode: 'c',
    upstreamMessage: 'm',
  });
  ours.koodriveTraceId = 't';
  const other = Object.assign(new Error('m'), { itemKey: { tenantId: 't' } });
  return new Set([...Object.keys(describeError(ours)), ...Object.keys(describeError(other))]);
})();

/**
 * Whether the arguments `args` of a logger call in `file` give a line the field `field`: written as a
 * key, or through a spread of describeError, of a helper function or a `const` object of the file, or of
 * a parameter `x` whose type is the one interface of handlers/ and lib/ named `…X` (`report`:
 * AttemptReport).
 */
function givesField(file: string, args: string, field: string, depth = 0): boolean {
  if (new RegExp(`(?:^|[{,(]|\\s)${field}\\s*(?::|,|\\}|$)`).test(args)) return true;
  if (/\bdescribeError\(/.test(args) && DESCRIBE_ERROR_KEYS.has(field)) return true;
  if (depth > 2) return false;
  const text = SOURCES.get(file) ?? '';
  const named = [...args.matchAll(/(?:\.\.\.|^\s*,?\s*)([A-Za-z_]\w*)(\()?/g)];
  for (const [, name, call] of named) {
    const definition = call
      ? text.match(new RegExp(`function ${name}\\([^)]*\\)[^{]*\\{`))
      : text.match(new RegExp(`const ${name}\\b[^=]*=\\s*\\{`));
    if (definition?.index !== undefined) {
      const body = balanced(text, definition.index + definition[0].length - 1);
      if (givesField(file, body, field, depth + 1)) return true;
      continue;
    }
    if (call || name === undefined) continue;
    const type = `${name.charAt(0).toUpperCase()}${name.slice(1)}`;
    const interfaces = [...SOURCES.values()].flatMap((source) =>
      [...source.matchAll(new RegExp(`\\binterface \\w*${type} \\{`, 'g'))].map((m) =>
        balanced(source, (m.index ?? 0) + m[0].length - 1),
      ),
    );
    if (interfaces.length === 1 && new RegExp(`^\\s*${field}\\??:`, 'm').test(interfaces[0] ?? ''))
      return true;
  }
  return false;
}

interface MessageClaim {
  message: string;
  level?: string;
  fields: string[];
}

/** Every log message the README names, with the level and fields it states for it. */
function readmeMessages(): MessageClaim[] {
  const claims = new Map<string, MessageClaim>();
  const claim = (message: string) => {
    const found = claims.get(message) ?? { message, fields: [] };
    claims.set(message, found);
    return found;
  };
  for (const span of spans(README)) if (isLogMessage(span)) claim(span);
  for (const { message } of [...claims.values()]) {
    const quoted = message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    // `msg` (WARN, with `a`, `b`) — `msg` (`a`, `b`)
    for (const m of FLAT_README.matchAll(
      new RegExp(`\`${quoted}\` \\(((?:[A-Z]+, with )?\`[^)]*)\\)`, 'g'),
    )) {
      const inner = m[1] ?? '';
      const level = inner.match(/^(DEBUG|INFO|WARN|ERROR)\b/)?.[1];
      if (level !== undefined) claim(message).level = level;
      for (const field of spans(inner)) if (/^[a-z][A-Za-z]*$/.test(field)) claim(message).fields.push(field);
    }
    // `msg`: `a`, `b` and `c` — `msg` or `other`: `a`, … (the list of names right after the colon)
    for (const m of FLAT_README.matchAll(
      new RegExp(
        `\`${quoted}\`(?: or \`[^\`]+\`)?: ((?:\`[a-z][A-Za-z]*\`(?:,? and |, ))*\`[a-z][A-Za-z]*\`)`,
        'g',
      ),
    )) {
      claim(message).fields.push(...spans(m[1] ?? ''));
    }
    // `msg` with `a` — `msg` log line says so with `a` — `msg` with `a: true`
    for (const m of FLAT_README.matchAll(
      new RegExp(
        `\`${quoted}\`(?: log)?(?: lines?)?(?: says so)? with \`([a-z][A-Za-z]*)(?::[^\`]*)?\``,
        'g',
      ),
    )) {
      claim(message).fields.push(m[1] ?? '');
    }
  }
  // a `warn` line … `msg` [or `msg`]: up to the clause's end (a colon, semicolon or table cell).
  for (const m of FLAT_README.matchAll(/`(debug|info|warn|error)` lines?\b((?:[^`:;|]|`[^`]*`)*)/gi)) {
    for (const span of spans(m[2] ?? '')) {
      if (claims.has(span)) claim(span).level = (m[1] ?? '').toUpperCase();
    }
  }
  return [...claims.values()];
}

describe('README log messages', () => {
  const claims = readmeMessages();

  it('finds the log messages the README names (the extraction itself works)', () => {
    expect(claims.length).toBeGreaterThanOrEqual(12);
    expect(claims.filter((c) => c.level !== undefined).length).toBeGreaterThanOrEqual(4);
    expect(claims.filter((c) => c.fields.length > 0).length).toBeGreaterThanOrEqual(5);
  });

  it('names only messages a logger call in handlers/ or lib/ writes, at the level the README says', () => {
    const wrong: string[] = [];
    for (const { message, level } of claims) {
      const calls = LOG_CALLS.filter((call) => call.message === message);
      if (calls.length === 0) {
        wrong.push(`'${message}': no logger call writes it`);
        continue;
      }
      if (level !== undefined && !calls.some((call) => call.level === level)) {
        const where = calls.map((c) => `${c.level} at ${c.file}:${c.line}`).join(', ');
        wrong.push(`'${message}': README says ${level}, the code writes it at ${where}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('names only fields those calls give their lines', () => {
    const wrong: string[] = [];
    for (const { message, fields } of claims) {
      const calls = LOG_CALLS.filter((call) => call.message === message);
      for (const field of fields) {
        if (!calls.some((call) => givesField(call.file, call.args, field))) {
          wrong.push(
            `'${message}' has no field '${field}' (${calls.map((c) => `${c.file}:${c.line}`).join(', ')})`,
          );
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------- metrics

/**
 * Every metric name handlers/ and lib/ emit — each of METRIC_NAMES that some code uses, any name given
 * to addMetric as a literal, the cold-start document's — and the dimensions they give them.
 */
function codeMetrics(): { names: Set<string>; dimensions: Set<string> } {
  const names = new Set<string>();
  const dimensions = new Set<string>();
  for (const text of SOURCES.values()) {
    for (const m of text.matchAll(/\bMETRIC_NAMES\.(\w+)/g)) {
      const name = METRIC_NAMES[(m[1] ?? '') as keyof typeof METRIC_NAMES];
      if (name === undefined) throw new Error(`METRIC_NAMES.${m[1]} is no metric name`);
      names.add(name);
    }
    for (const m of text.matchAll(/\baddMetric\(\s*'(\w+)'/g)) names.add(m[1] ?? '');
    for (const m of text.matchAll(/defaultDimensions:\s*\{([^}]*)\}/g)) {
      for (const key of (m[1] ?? '').matchAll(/(\w+)\s*:/g)) dimensions.add(key[1] ?? '');
    }
  }
  // The cold-start document the functions print (the snapshot function's comes from Powertools' own).
  const saved = process.env.POWERTOOLS_METRICS_NAMESPACE;
  process.env.POWERTOOLS_METRICS_NAMESPACE = 'Test';
  try {
    const document = coldStartMetricDocument('fn') as {
      _aws: { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] };
    };
    for (const directive of document._aws.CloudWatchMetrics) {
      for (const metric of directive.Metrics) names.add(metric.Name);
      for (const set of directive.Dimensions) for (const dimension of set) dimensions.add(dimension);
    }
  } finally {
    if (saved === undefined) delete process.env.POWERTOOLS_METRICS_NAMESPACE;
    else process.env.POWERTOOLS_METRICS_NAMESPACE = saved;
  }
  return { names, dimensions };
}

/** The metric names and dimensions the README gives. */
function readmeMetrics(): { paragraph: Set<string>; elsewhere: Set<string>; dimensions: Set<string> } {
  const start = README.indexOf('**Metrics**');
  const paragraph = flat(README.slice(start, README.indexOf('\n\n', start)));
  const dimensions = new Set<string>();
  for (const m of paragraph.matchAll(/\b(?:per|dimension) `([^`]+)`(?: and `([^`]+)`)?/g)) {
    for (const name of [m[1], m[2]]) if (name !== undefined) dimensions.add(name);
  }
  const named = new Set(spans(paragraph).filter((s) => /^[A-Z][A-Za-z]+$/.test(s) && !dimensions.has(s)));
  const elsewhere = new Set<string>();
  for (const m of FLAT_README.matchAll(/`(\w+)` with dimension `(\w+)`/g)) {
    elsewhere.add(m[1] ?? '');
    dimensions.add(m[2] ?? '');
  }
  for (const m of FLAT_README.matchAll(/\bcount(?:ed)? in `(\w+)`/g)) elsewhere.add(m[1] ?? '');
  for (const m of FLAT_README.matchAll(/metrics of its own[^(]*\(([^)]*)\)/g)) {
    for (const s of spans(m[1] ?? '')) if (/^[A-Z][A-Za-z]+$/.test(s)) elsewhere.add(s);
  }
  return { paragraph: named, elsewhere, dimensions };
}

describe('README metrics', () => {
  const code = codeMetrics();
  const readme = readmeMetrics();

  it('lists in "Metrics" exactly the metrics the code emits', () => {
    expect(readme.paragraph.size).toBeGreaterThanOrEqual(8);
    expect([...readme.paragraph].sort()).toEqual([...code.names].sort());
  });

  it('names no other metric, nor a dimension the code does not give', () => {
    expect(readme.elsewhere.size).toBeGreaterThanOrEqual(3);
    expect([...readme.elsewhere].filter((name) => !code.names.has(name))).toEqual([]);
    expect(readme.dimensions.size).toBeGreaterThanOrEqual(3);
    expect([...readme.dimensions].filter((name) => !code.dimensions.has(name))).toEqual([]);
  });
});

// -------------------------------------------------------------------------------------------- alarms

describe('README alarms', () => {
  /** The alarm names the README gives, `<…>` and `…` standing for any text. */
  const named = new Set<string>();
  for (const m of FLAT_README.matchAll(/\balarm `([^`]+)`(?: \/ `([^`]+)`)?/g)) {
    for (const name of [m[1], m[2]]) if (name !== undefined) named.add(name);
  }
  for (const m of FLAT_README.matchAll(/`([^`]+)` alarm\b/g)) named.add(m[1] ?? '');
  for (const span of spans(README)) if (span.startsWith('allocated-ratio-')) named.add(span);

  /** The alarms the stack makes with serverless.yml's functions and queues, and every threshold named. */
  function stackAlarmNames(): string[] {
    const list = (key: string) =>
      (SERVERLESS_YML.match(new RegExp(`^ {4}${key}: \\[([^\\]]*)\\]`, 'm'))?.[1] ?? '')
        .split(',')
        .map((s) => s.trim());
    const percents = [...named].flatMap((name) => name.match(/^allocated-ratio-(\d+(?:\.\d+)?)/)?.[1] ?? []);
    const settings: MonitoringSettings = {
      functions: list('functions'),
      deadLetterQueues: list('deadLetterQueues'),
      namespace: 'KooDriveAllocation',
      service: 'svc',
      thresholds: ['0.8', '0.9', '1.0', ...percents.map((p) => String(Number(p) / 100))]
        .filter((t, i, all) => all.findIndex((u) => Number(u) === Number(t)) === i)
        .join(','),
      staleSnapshotSeconds: 2100,
      ratioWindowSeconds: 1800,
      queueRetrySeconds: 1800,
      alarmTopicArn: '',
      namePrefix: 'PREFIX',
    };
    const names = (s: MonitoringSettings) =>
      Object.values(monitoringResources(s))
        .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
        .map((r) => String(r.Properties.AlarmName).replace(/^PREFIX-/, ''));
    return [...names(settings), ...names({ ...settings, alarmTenants: ['acme'] })];
  }

  it('names only alarms the stack makes', () => {
    expect(named.size).toBeGreaterThanOrEqual(8);
    const alarms = stackAlarmNames();
    const missing = [...named].filter((name) => {
      const pattern = name
        .split(/(<[^>]+>|…)/)
        .map((part, i) => (i % 2 === 1 ? '.+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('');
      return !alarms.some((alarm) => new RegExp(`^${pattern}$`).test(alarm));
    });
    expect(missing, `alarms made: ${alarms.join(', ')}`).toEqual([]);
  });
});

// --------------------------------------------------------------------------------------- error codes

describe('README error codes', () => {
  it('gives every contract code, with its status, in the errors table, and no other', () => {
    const rows = tableRows(section('HTTP API'), '| status | `code` | when |');
    const table = Object.fromEntries(rows.map(([status, code]) => [spans(code ?? '')[0], Number(status)]));
    expect(table).toEqual({ ...ERROR_CODES });
  });

  it('names no error code the code does not have', () => {
    const codes = Object.keys(ERROR_CODES);
    const lastWords = new Set(codes.map((code) => code.split('_').pop()));
    const named = spans(README).filter(
      (span) =>
        /^[A-Z]+(?:_[A-Z]+)*_(?:[A-Z]+|\*)$/.test(span) &&
        (span.endsWith('_*') || lastWords.has(span.split('_').pop())),
    );
    expect(named.length).toBeGreaterThanOrEqual(20);
    const unknown = named.filter((span) =>
      span.endsWith('_*') ? !codes.some((code) => code.startsWith(span.slice(0, -1))) : !codes.includes(span),
    );
    expect(unknown).toEqual([]);
    // The 3 a.m. table's rows that start with a code.
    const leading = tableRows(section('At 3 a.m.'), '| you see |').flatMap(
      (row) => row[0]?.match(/^`([A-Z_]+)`/)?.[1] ?? [],
    );
    expect(leading.length).toBeGreaterThanOrEqual(6);
    expect(leading.filter((code) => !codes.includes(code))).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------------ settings

/** Variables read by something other than this project's TypeScript, and what reads them. */
const READ_ELSEWHERE: Record<string, string> = {
  GLIBC_TUNABLES: 'glibc, as the process starts',
};

describe('README settings', () => {
  const rows = tableRows(section('Configuration'), '| variable | stage parameter | meaning | default |');
  const defaults = SERVERLESS_YML.slice(
    SERVERLESS_YML.indexOf('\n  default:\n'),
    SERVERLESS_YML.indexOf('\n  dev:\n'),
  );
  const params = new Set([...defaults.matchAll(/^ {4}(\w+):/gm)].map((m) => m[1] ?? ''));
  const yml = [SERVERLESS_YML, ...['access-logs.yml', 'authorizers.yml'].map((f) => read(`serverless/${f}`))];
  const isRead = (param: string) => yml.some((text) => text.includes(`:${param}}`));

  it('gives stage parameters serverless.yml declares and uses', () => {
    expect(rows.length).toBeGreaterThanOrEqual(30);
    const named = [
      ...rows.flatMap((row) => spans(row[1] ?? '')),
      // `--param name=value` is the syntax, not a parameter.
      ...[...FLAT_README.matchAll(/--param ["']?(\w+)=(?!value`)/g)].map((m) => m[1] ?? ''),
    ];
    expect(named.filter((param) => !params.has(param))).toEqual([]);
    expect(named.filter((param) => !isRead(param))).toEqual([]);
  });

  it('gives each variable as serverless.yml sets it from its parameter, and read by the code', () => {
    const readers = [
      ...SOURCES.values(),
      read('runtime/exec-wrapper.sh'),
      read('node_modules/@aws-lambda-powertools/logger/lib/esm/Logger.js'),
    ];
    const wrong: string[] = [];
    for (const [variable, param] of rows.map((row) => [spans(row[0] ?? '')[0], spans(row[1] ?? '')[0]])) {
      if (variable === undefined) continue;
      if (!new RegExp(`^ {4}${variable}: \\$\\{\\w+:${param}\\}$`, 'm').test(SERVERLESS_YML)) {
        wrong.push(`${variable} is not set from \${param:${param}} in serverless.yml`);
      }
      const readHere = readers.some((text) => new RegExp(`['"$.{]${variable}\\b`).test(text));
      if (!readHere && READ_ELSEWHERE[variable] === undefined) wrong.push(`${variable} is read by nothing`);
    }
    expect(wrong).toEqual([]);
  });
});
