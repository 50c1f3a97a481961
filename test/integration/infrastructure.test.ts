/**
 * Packages the service with osls, offline, and checks the CloudFormation it would deploy: runtimes, artifacts,
 * least-privilege roles, the table, queues, triggers, authorizers and log retention.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../lib/config.ts';
import ResourceArnsPlugin, {
  eventBusResource,
  foreignRegionArns,
  secretKeyArns,
  tenantSecretResources,
} from '../../serverless/resource-arns.ts';
import { templateProblems } from '../support/cloudformation-schema.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SERVERLESS = createRequire(import.meta.url).resolve('osls/bin/serverless.js');
const FUNCTIONS = ['allocation', 'history', 'chart', 'snapshot'] as const;
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:koodrive/acme-AbCdEf';
const SECRET_KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function record(value: unknown, what: string): Json {
  if (!isRecord(value)) throw new Error(`${what} is not an object: ${JSON.stringify(value)}`);
  return value;
}

function array(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what} is not a list: ${JSON.stringify(value)}`);
  return value;
}

/** The account- and region-scoped ARN that the stack fills in with `Fn::Sub`. */
function stackArn(service: string, resource: string) {
  return { 'Fn::Sub': `arn:\${AWS::Partition}:${service}:\${AWS::Region}:\${AWS::AccountId}:${resource}` };
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

interface Packaged {
  dir: string;
  template: Json;
  resources: Json;
  /** What osls printed while packaging, warnings included. */
  output: string;
}

/** A copy of what packaging reads: osls zips into `<service>/.serverless`, so runs in one checkout would collide. */
async function copyService(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'koodrive-service-'));
  for (const entry of ['serverless.yml', 'serverless', 'lib', 'dist', 'package.json']) {
    await cp(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  }
  await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

let serviceDir = ROOT;

/** What osls printed: its output, and its log (progress, warnings) on stderr. */
async function runServerless(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return await promisify(execFile)(process.execPath, [SERVERLESS, ...args], {
    cwd: serviceDir,
    timeout: 180_000,
    maxBuffer: 16 * 1024 * 1024,
    env: { ...process.env, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off' },
  });
}

async function packageStage(dir: string, args: string[]): Promise<Packaged> {
  const { stdout, stderr } = await runServerless(['package', '--package', dir, ...args]);
  const template = record(
    JSON.parse(await readFile(path.join(dir, 'cloudformation-template-update-stack.json'), 'utf8')),
    'template',
  );
  return { dir, template, resources: record(template.Resources, 'Resources'), output: `${stdout}${stderr}` };
}

/** What osls printed when packaging with `args` failed (into a fresh directory); undefined if it packaged. */
async function packagingFailure(args: string[]): Promise<string | undefined> {
  const dir = await mkdtemp(path.join(tmpdir(), 'koodrive-package-'));
  dirs.push(dir);
  return packageStage(dir, args).then(
    () => undefined,
    (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
  );
}

function resource(pkg: Packaged, logicalId: string): Json {
  return record(pkg.resources[logicalId], `resource ${logicalId}`);
}

function props(pkg: Packaged, logicalId: string): Json {
  return record(resource(pkg, logicalId).Properties, `${logicalId}.Properties`);
}

function ofType(pkg: Packaged, type: string): [string, Json][] {
  return Object.entries(pkg.resources).flatMap(([id, r]) =>
    isRecord(r) && r.Type === type ? [[id, r]] : [],
  );
}

function logicalIdOf(name: string): string {
  return `${name.charAt(0).toUpperCase()}${name.slice(1)}`;
}

/** Whether a template condition holds: the literal Fn::Not/Fn::Equals/Fn::And/Fn::Or these templates use. */
function conditionHolds(pkg: Packaged, condition: unknown): boolean {
  if (typeof condition === 'string') {
    return conditionHolds(pkg, record(pkg.template.Conditions, 'Conditions')[condition]);
  }
  const node = record(condition, 'condition');
  const [fn, args] = Object.entries(node)[0] ?? [];
  const list = array(args, String(fn));
  if (fn === 'Condition') return conditionHolds(pkg, args);
  if (fn === 'Fn::Not') return !conditionHolds(pkg, list[0]);
  if (fn === 'Fn::And') return list.every((item) => conditionHolds(pkg, item));
  if (fn === 'Fn::Or') return list.some((item) => conditionHolds(pkg, item));
  if (fn === 'Fn::Equals') return JSON.stringify(list[0]) === JSON.stringify(list[1]);
  throw new Error(`condition ${JSON.stringify(condition)} is not a literal one`);
}

/**
 * Statements of a role's inline policies as the stack creates them: a conditional one (`Fn::If`) as its
 * condition picks, and left out when that is `AWS::NoValue`.
 */
function statements(pkg: Packaged, roleId: string): Json[] {
  return array(props(pkg, roleId).Policies, `${roleId}.Policies`).flatMap((policy) =>
    array(record(record(policy, 'policy').PolicyDocument, 'PolicyDocument').Statement, 'Statement').flatMap(
      (s) => {
        const statement = record(s, 'statement');
        const conditional = statement['Fn::If'];
        if (!Array.isArray(conditional)) return [statement];
        const chosen = record(
          conditionHolds(pkg, conditional[0]) ? conditional[1] : conditional[2],
          'Fn::If',
        );
        return chosen.Ref === 'AWS::NoValue' ? [] : [chosen];
      },
    ),
  );
}

/** A role's statements as written, conditional ones (`Fn::If`) included unresolved. */
function rawStatements(pkg: Packaged, roleId: string): Json[] {
  return array(props(pkg, roleId).Policies, `${roleId}.Policies`).flatMap((policy) =>
    array(record(record(policy, 'policy').PolicyDocument, 'PolicyDocument').Statement, 'Statement').map((s) =>
      record(s, 'statement'),
    ),
  );
}

/** The IAM resource of the table SNAPSHOT_TABLE names (the stack's own by reference, or another by name). */
function tableArn(table: unknown) {
  return {
    'Fn::Sub': [
      'arn:$' + '{AWS::Partition}:dynamodb:$' + '{AWS::Region}:$' + '{AWS::AccountId}:table/$' + '{Table}',
      { Table: table },
    ],
  };
}

function statementFor(pkg: Packaged, roleId: string, action: string): Json | undefined {
  return statements(pkg, roleId).find((s) => asList(s.Action).includes(action));
}

function actionsOf(pkg: Packaged, roleId: string): string[] {
  return statements(pkg, roleId)
    .flatMap((s) => asList(s.Action))
    .map(String)
    .sort();
}

/** File names in a zip archive and their Unix modes (the external attributes' upper half), from its central directory. */
function zipModes(zip: Buffer): Map<string, number> {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip archive');
  const count = zip.readUInt16LE(eocd + 10);
  let offset = zip.readUInt32LE(eocd + 16);
  const modes = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error('bad central directory entry');
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    modes.set(
      zip.toString('utf8', offset + 46, offset + 46 + nameLength),
      zip.readUInt32LE(offset + 38) >>> 16,
    );
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return modes;
}

/** File names in a zip archive, sorted. */
function zipEntries(zip: Buffer): string[] {
  return [...zipModes(zip).keys()].sort();
}

/** Every logical id a template refers to with Ref, Fn::GetAtt or a Fn::Sub `${…}`. */
function references(node: unknown, found: Set<string> = new Set()): Set<string> {
  if (Array.isArray(node)) {
    for (const item of node) references(item, found);
  } else if (isRecord(node)) {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'Ref' && typeof value === 'string') found.add(value);
      else if (key === 'Fn::GetAtt') {
        const target = Array.isArray(value) ? value[0] : String(value).split('.')[0];
        if (typeof target === 'string') found.add(target);
      } else if (key === 'Fn::Sub') {
        const [text, variables] = Array.isArray(value) ? value : [value, {}];
        for (const match of String(text).matchAll(/\$\{([^}!][^}]*)\}/g)) {
          const name = (match[1] ?? '').split('.')[0] ?? '';
          if (!(isRecord(variables) && name in variables)) found.add(name);
        }
        references(variables, found);
      } else references(value, found);
    }
  }
  return found;
}

const ALARM_TOPIC = 'arn:aws:sns:eu-west-1:123456789012:ops-alarms';
const dirs: string[] = [];
let dev: Packaged;
let prod: Packaged;
let localConfig: Json;

beforeAll(async () => {
  const missing = FUNCTIONS.filter((name) => !existsSync(path.join(ROOT, 'dist', name, 'index.mjs')));
  if (missing.length > 0) {
    throw new Error(`dist/ lacks ${missing.join(', ')}: run \`npm run build\` first (npm test does).`);
  }
  serviceDir = await copyService();
  dirs.push(serviceDir);
  for (let i = 0; i < 2; i++) dirs.push(await mkdtemp(path.join(tmpdir(), 'koodrive-package-')));
  const [, devDir = '', prodDir = ''] = dirs;
  // One at a time, for the same reason as the copy.
  dev = await packageStage(devDir, ['--stage', 'dev']);
  prod = await packageStage(prodDir, [
    '--stage',
    'prod',
    '--region',
    'eu-west-1',
    '--param',
    `tenants=acme=${SECRET_ARN},beta=koodrive/beta,gamma=koodrive/beta,delta`,
    '--param',
    'authorizer=jwt',
    '--param',
    'jwtIssuerUrl=https://issuer.example.com/',
    '--param',
    'jwtAudience=koodrive-allocation',
    '--param',
    'jwtScopes=koodrive-allocation/read, ops/admin',
    '--param',
    'eventBusName=koodrive-prod',
    '--param',
    'logRetentionDays=90',
    '--param',
    `alarmTopicArn=${ALARM_TOPIC}`,
    '--param',
    'historyCursorKey=prod-cursor-key-0123456789abcdef',
    '--param',
    'apiThrottleRate=5',
    '--param',
    'snapshotSchedule=rate(1 hour)',
    '--param',
    'snapshotQueueConcurrency=4',
    '--param',
    'apiAccessLogs=false',
    '--param',
    'corsAllowedOrigins=https://dash.example.com,https://ops.example.com',
    '--param',
    'snapshotRequestSources=ops.scripts, ops.capacity',
    '--param',
    `secretKmsKeyArns=${SECRET_KEY}`,
  ]);
  localConfig = record(
    JSON.parse((await runServerless(['print', '--stage', 'local', '--format', 'json'])).stdout),
    'print',
  );
}, 240_000);

afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('functions', () => {
  it('run nodejs24.x on arm64 with their bundle as handler, each with its own role', () => {
    const roles = new Set<string>();
    for (const name of FUNCTIONS) {
      const fn = props(dev, `${logicalIdOf(name)}LambdaFunction`);
      expect(fn.Runtime).toBe('nodejs24.x');
      expect(fn.Architectures).toEqual(['arm64']);
      expect(fn.Handler).toBe(`dist/${name}/index.handler`);
      expect(fn.MemorySize).toBe(256);
      expect(fn.Role).toEqual({ 'Fn::GetAtt': [`${logicalIdOf(name)}Role`, 'Arn'] });
      roles.add(JSON.stringify(fn.Role));
    }
    expect(roles.size).toBe(FUNCTIONS.length);
    expect(ofType(dev, 'AWS::Lambda::Function').map(([id]) => id)).toHaveLength(FUNCTIONS.length);
    expect(dev.resources.IamRoleLambdaExecution).toBeUndefined();
  });

  it('reserves no concurrency unless snapshotReservedConcurrency asks (an account must keep 100 unreserved)', () => {
    for (const name of FUNCTIONS) {
      expect(props(dev, `${logicalIdOf(name)}LambdaFunction`).ReservedConcurrentExecutions).toBeUndefined();
    }
  });

  it('keeps the HTTP functions under API Gateway’s 30 s and gives the snapshot function 300 s', () => {
    expect(props(dev, 'AllocationLambdaFunction').Timeout).toBe(29);
    expect(props(dev, 'HistoryLambdaFunction').Timeout).toBe(29);
    expect(props(dev, 'ChartLambdaFunction').Timeout).toBe(29);
    expect(props(dev, 'SnapshotLambdaFunction').Timeout).toBe(300);
  });

  it('set every configuration variable of lib/config.ts, the table by reference', () => {
    for (const name of FUNCTIONS) {
      const variables = record(
        record(props(dev, `${logicalIdOf(name)}LambdaFunction`).Environment, 'Environment').Variables,
        'Variables',
      );
      for (const key of Object.keys(DEFAULTS)) expect(variables, `${name}: ${key}`).toHaveProperty(key);
      expect(variables.SNAPSHOT_TABLE).toEqual({ Ref: 'SnapshotsTable' });
      // No deployment shares a public default key: each stack signs cursors with its own id.
      expect(variables.HISTORY_CURSOR_KEY).toEqual({ Ref: 'AWS::StackId' });
      // Stacks are mapped on demand (lib/source-map.ts), not by Node at every cold start.
      expect(variables).not.toHaveProperty('NODE_OPTIONS');
      // glibc's defaults unless a stage trades cold start for memory (README, "Performance").
      expect(variables.GLIBC_TUNABLES).toBe('');
      expect(variables.KOODRIVE_TENANTS).toBe('demo=koodrive/demo');
      expect(variables.EVENT_BUS_NAME).toBe('default');
    }
  });

  it('sign history cursors with the key a deployment sets, when it sets one', () => {
    const variables = record(
      record(props(prod, 'HistoryLambdaFunction').Environment, 'Environment').Variables,
      'Variables',
    );
    expect(variables.HISTORY_CURSOR_KEY).toBe('prod-cursor-key-0123456789abcdef');
  });

  it('package only their own bundle, its source map and the start script', async () => {
    for (const name of FUNCTIONS) {
      const zip = await readFile(path.join(dev.dir, `${name}.zip`));
      expect(zipEntries(zip)).toEqual(
        [`dist/${name}/index.mjs`, `dist/${name}/index.mjs.map`, 'dist/exec-wrapper.sh'].sort(),
      );
    }
  });

  it('start node through the packaged, executable wrapper, with the default V8 flags', async () => {
    for (const name of FUNCTIONS) {
      const variables = record(
        record(props(dev, `${logicalIdOf(name)}LambdaFunction`).Environment, 'Environment').Variables,
        'Variables',
      );
      expect(variables.V8_FLAGS).toBe('--no-concurrent-recompilation --max-opt=2');
      const wrapper = String(variables.AWS_LAMBDA_EXEC_WRAPPER);
      // Lambda unpacks the zip at /var/task: the variable must name an entry of this function's own zip.
      expect(wrapper).toMatch(/^\/var\/task\//);
      const modes = zipModes(await readFile(path.join(dev.dir, `${name}.zip`)));
      const mode = modes.get(wrapper.slice('/var/task/'.length));
      expect(mode, `${name}: ${wrapper} in the zip`).toBeDefined();
      // A regular file anyone may read and execute: Lambda runs the code as another user than the owner.
      expect((mode ?? 0) & 0o170777).toBe(0o100755);
      expect((modes.get(`dist/${name}/index.mjs`) ?? 0) & 0o111).toBe(0);
    }
  });

  it('refuses, when packaging, V8 flags node would not start with, instead of functions that never start', async () => {
    const failure = await packagingFailure([
      '--stage',
      'prod',
      '--param',
      'v8Flags=--max-opt=2 --singlethreaded',
    ]);
    expect(failure).toContain("v8Flags '--max-opt=2 --singlethreaded': node");
    expect(failure).toContain('bad option: --singlethreaded');
    expect(failure).not.toMatch(/^\s+at /m);
  }, 120_000);

  it('refuses, when packaging, settings the functions would refuse at run time, naming each and its parameter', async () => {
    const failure = await packagingFailure([
      '--stage',
      'prod',
      '--param',
      'timeoutMs=abc',
      '--param',
      'snapshotRetentionDays=0',
      '--param',
      'allocationThresholds=80,90',
    ]);
    expect(failure).toContain('The functions would refuse these settings at run time:');
    expect(failure).toContain(
      "KOODRIVE_TIMEOUT_MS is 'abc': it must be a whole number from 1 to 900000. Set it with the stage parameter timeoutMs (params in serverless.yml, or --param timeoutMs=…).",
    );
    expect(failure).toContain("SNAPSHOT_RETENTION_DAYS is '0'");
    expect(failure).toContain('stage parameter snapshotRetentionDays');
    expect(failure).toContain("ALLOCATION_THRESHOLDS is '80,90'");
    expect(failure).not.toMatch(/^\s+at /m);
  }, 120_000);

  it('keep their logs for the configured number of days', () => {
    for (const name of FUNCTIONS) {
      expect(props(dev, `${logicalIdOf(name)}LogGroup`).RetentionInDays).toBe(30);
      expect(props(prod, `${logicalIdOf(name)}LogGroup`).RetentionInDays).toBe(90);
    }
  });
});

describe('IAM', () => {
  it('lets the secret-reading roles decrypt with customer managed keys only when given, through Secrets Manager only', () => {
    // dev names no key: the statement is in the template but left out of the roles.
    expect(record(record(dev.template.Conditions, 'Conditions').HasSecretKmsKeys, 'condition')).toEqual({
      'Fn::Not': [{ 'Fn::Equals': ['', ''] }],
    });
    expect(record(prod.template.Conditions, 'Conditions').HasSecretKmsKeys).toEqual({
      'Fn::Not': [{ 'Fn::Equals': [SECRET_KEY, ''] }],
    });
    const secretKeys = {
      Sid: 'SecretKeys',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: [SECRET_KEY],
      Condition: {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub placeholder.
        StringEquals: { 'kms:ViaService': { 'Fn::Sub': 'secretsmanager.${AWS::Region}.amazonaws.com' } },
      },
    };
    for (const role of ['AllocationRole', 'SnapshotRole']) {
      expect(statementFor(prod, role, 'kms:Decrypt')).toEqual(secretKeys);
      expect(rawStatements(prod, role)).toContainEqual({
        'Fn::If': ['HasSecretKmsKeys', secretKeys, { Ref: 'AWS::NoValue' }],
      });
      expect(statementFor(dev, role, 'kms:Decrypt')).toBeUndefined();
    }
    for (const role of ['HistoryRole', 'ChartRole'])
      expect(statementFor(prod, role, 'kms:Decrypt')).toBeUndefined();
    expect(secretKeyArns(` ${SECRET_KEY}, ${SECRET_KEY} `)).toEqual([SECRET_KEY]);
    expect(secretKeyArns('')).toEqual([]);
    // Not empty, so the statement would be granted, yet naming no key: refused rather than deployed empty.
    expect(() => secretKeyArns(' , ')).toThrow(/give KMS key ARNs/);
    expect(() => secretKeyArns(' ')).toThrow(/give KMS key ARNs/);
    expect(() => secretKeyArns('arn:aws:kms:eu-west-1:123456789012:alias/secrets')).toThrow(
      /secretKmsKeyArns has 'arn:aws:kms:eu-west-1:123456789012:alias\/secrets'.*not an alias/,
    );
  });

  it('keeps every permission in the role a function names, so the grant is in place before the function runs', () => {
    // A function depends on its role (Fn::GetAtt): CloudFormation updates the role's inline policies before
    // it creates or updates the function. A separate AWS::IAM::Policy attached to the role is no such
    // dependency (and a DependsOn on one whose condition is false would be a template error), so the first
    // runs after the deploy that adds it could fail with KMS AccessDenied.
    for (const pkg of [dev, prod]) {
      expect(ofType(pkg, 'AWS::IAM::Policy')).toEqual([]);
      expect(ofType(pkg, 'AWS::IAM::ManagedPolicy')).toEqual([]);
    }
  });

  it('uses no wildcard action and no `*` resource', () => {
    for (const pkg of [dev, prod]) {
      for (const [roleId] of ofType(pkg, 'AWS::IAM::Role')) {
        for (const statement of statements(pkg, roleId)) {
          for (const action of asList(statement.Action)) expect(String(action)).not.toContain('*');
          for (const target of asList(statement.Resource)) expect(target).not.toBe('*');
          expect(statement.Effect).toBe('Allow');
        }
      }
    }
  });

  it('lets each role write only its own function’s logs', () => {
    for (const name of FUNCTIONS) {
      const logs = statementFor(dev, `${logicalIdOf(name)}Role`, 'logs:PutLogEvents');
      expect(logs?.Resource).toEqual({ 'Fn::GetAtt': [`${logicalIdOf(name)}LogGroup`, 'Arn'] });
    }
  });

  it('grants exactly the needed actions per function', () => {
    // With customer managed keys for the secrets, the roles that read them may decrypt with them.
    expect(actionsOf(prod, 'AllocationRole')).toEqual([
      'kms:Decrypt',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'secretsmanager:GetSecretValue',
    ]);
    expect(actionsOf(prod, 'SnapshotRole')).toContain('kms:Decrypt');
    expect(actionsOf(dev, 'AllocationRole')).toEqual([
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'secretsmanager:GetSecretValue',
    ]);
    expect(actionsOf(dev, 'HistoryRole')).toEqual([
      'dynamodb:Query',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
    ]);
    expect(actionsOf(dev, 'SnapshotRole')).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'events:PutEvents',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      'secretsmanager:GetSecretValue',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
    ]);
  });

  it('reads exactly the configured secrets: names with the -?????? suffix, full-looking ARNs as given and with it', () => {
    const byName = (secret: string) => stackArn('secretsmanager', `secret:${secret}-??????`);
    for (const role of ['AllocationRole', 'SnapshotRole']) {
      expect(statementFor(dev, role, 'secretsmanager:GetSecretValue')?.Resource).toEqual([
        byName('koodrive/demo'),
      ]);
      // delta is listed bare: its secret is named by secretIdTemplate (koodrive/{tenantId}).
      expect(statementFor(prod, role, 'secretsmanager:GetSecretValue')?.Resource).toEqual([
        SECRET_ARN,
        `${SECRET_ARN}-??????`,
        byName('koodrive/beta'),
        byName('koodrive/delta'),
      ]);
    }
  });

  it('scopes table, bus and queue access to this stack’s resources', () => {
    for (const role of ['HistoryRole', 'ChartRole']) {
      expect(statementFor(dev, role, 'dynamodb:Query')?.Resource).toEqual(
        tableArn({ Ref: 'SnapshotsTable' }),
      );
    }
    expect(statementFor(dev, 'SnapshotRole', 'dynamodb:PutItem')?.Resource).toEqual(
      tableArn({ Ref: 'SnapshotsTable' }),
    );
    expect(statementFor(dev, 'SnapshotRole', 'events:PutEvents')?.Resource).toEqual(
      stackArn('events', 'event-bus/default'),
    );
    // PutEvents only while something is published (publishEventBus not empty).
    const publish = statements(dev, 'SnapshotRole').find((s) => s.Sid === 'PublishEvents');
    const [policy] = array(props(dev, 'SnapshotRole').Policies, 'Policies');
    const raw = array(
      record(record(policy, 'policy').PolicyDocument, 'PolicyDocument').Statement,
      'Statement',
    ).find((statement) => JSON.stringify(statement).includes('"PublishEvents"'));
    expect(publish).toBeDefined();
    expect(record(raw, 'statement')['Fn::If']).toEqual(['PublishesEvents', publish, { Ref: 'AWS::NoValue' }]);
    expect(record(dev.template.Conditions, 'Conditions').PublishesEvents).toEqual({
      'Fn::Not': [{ 'Fn::Equals': ['default', ''] }],
    });
    expect(statementFor(prod, 'SnapshotRole', 'events:PutEvents')?.Resource).toEqual(
      stackArn('events', 'event-bus/koodrive-prod'),
    );
    expect(statementFor(dev, 'SnapshotRole', 'sqs:ReceiveMessage')?.Resource).toEqual({
      'Fn::GetAtt': ['SnapshotQueue', 'Arn'],
    });
    expect(statementFor(dev, 'SnapshotRole', 'sqs:SendMessage')?.Resource).toEqual({
      'Fn::GetAtt': ['ScheduleFailureQueue', 'Arn'],
    });
  });

  it('names the secrets of bare tenant ids by the template, and past 50 grants the template by its wildcard', () => {
    expect(tenantSecretResources('a,b=x/y', 'koodrive/{tenantId}')).toEqual([
      stackArn('secretsmanager', 'secret:koodrive/a-??????'),
      stackArn('secretsmanager', 'secret:x/y-??????'),
    ]);
    // A partial ARN (no random suffix) reads the secret, but IAM matches the full ARN: the suffix is added.
    const partial = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:koodrive/beta';
    expect(tenantSecretResources(`a=${SECRET_ARN},b=${partial}`)).toEqual([
      SECRET_ARN,
      `${SECRET_ARN}-??????`,
      `${partial}-??????`,
    ]);
    const many = Array.from({ length: 60 }, (_, i) => `t${i}`).join(',');
    expect(tenantSecretResources(`${many},a=${SECRET_ARN}`, 'koodrive/{tenantId}')).toEqual([
      SECRET_ARN,
      `${SECRET_ARN}-??????`,
      stackArn('secretsmanager', 'secret:koodrive/*-??????'),
    ]);
    const oneByOne = Array.from({ length: 51 }, (_, i) => `t${i}=s/${i}`).join(',');
    expect(() => tenantSecretResources(oneByOne, 'koodrive/{tenantId}')).toThrow(
      /names 51 secrets one by one, more than an IAM policy can list/,
    );
    // 300 tenants fit in the short form, not one by one: refused at package time, not by CloudFormation.
    const ids = Array.from({ length: 300 }, (_, i) => `org${i}`);
    expect(ids.join(',').length).toBeLessThan(3_000);
    expect(tenantSecretResources(ids.join(','), 'koodrive/{tenantId}')).toHaveLength(1);
    expect(() =>
      tenantSecretResources(ids.map((id) => `${id}=koodrive/${id}`).join(','), 'koodrive/{tenantId}'),
    ).toThrow(/over the 3000 that fit in Lambda's 4 KB of environment variables/);
  });

  it('derives secret and bus resources from names and ARNs', () => {
    expect(tenantSecretResources(`a=x/y, b=${SECRET_ARN}, c=x/y`)).toEqual([
      stackArn('secretsmanager', 'secret:x/y-??????'),
      SECRET_ARN,
      `${SECRET_ARN}-??????`,
    ]);
    expect(() => tenantSecretResources('not a tenant')).toThrow(/tenants has an invalid tenant id/);
    expect(() => tenantSecretResources('a', 'koodrive')).toThrow(/secretIdTemplate is 'koodrive'/);
    expect(eventBusResource('arn:aws:events:eu-west-1:123456789012:event-bus/x')).toBe(
      'arn:aws:events:eu-west-1:123456789012:event-bus/x',
    );
    // Empty publishEventBus: the statement naming it is left out by its condition.
    expect(eventBusResource(' ')).toEqual({ Ref: 'AWS::NoValue' });
  });

  it('finds ARNs outside the stack’s region, also inside settings, and lets regionless and stack ARNs pass', () => {
    const template = {
      Resources: {
        Role: {
          Properties: {
            ManagedPolicyArns: ['arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole'],
            Resource: [
              SECRET_ARN,
              `${SECRET_ARN}-??????`,
              stackArn('secretsmanager', 'secret:koodrive/beta-??????'),
            ],
          },
        },
        Fn: {
          Properties: {
            Environment: {
              Variables: {
                KOODRIVE_TENANTS: `acme=${SECRET_ARN},x=arn:aws:secretsmanager:us-east-1:1:secret:x`,
              },
            },
          },
        },
        Alarm: { Properties: { AlarmActions: ['arn:aws-cn:sns:cn-north-1:123456789012:ops'] } },
      },
    };
    expect(foreignRegionArns(template, 'eu-west-1')).toEqual([
      'arn:aws:secretsmanager:us-east-1:1:secret:x',
      'arn:aws-cn:sns:cn-north-1:123456789012:ops',
    ]);
    expect(foreignRegionArns(template, 'us-east-1')).toEqual([
      SECRET_ARN,
      'arn:aws-cn:sns:cn-north-1:123456789012:ops',
    ]);
  });

  it('refuses, when packaging, a secret, bus, alarm topic or secrets’ KMS key in another region than the stack’s', async () => {
    const failure = await packagingFailure([
      '--stage',
      'prod',
      '--region',
      'us-east-1',
      '--param',
      `tenants=acme=${SECRET_ARN},beta`,
      '--param',
      `alarmTopicArn=${ALARM_TOPIC}`,
    ]);
    expect(failure).toContain(
      `The stack deploys to us-east-1, but these ARNs are in another region: ${SECRET_ARN}, ${ALARM_TOPIC}.`,
    );
    // The key appears only in the roles and a condition, serverless.yml's own resources: Secrets Manager in
    // the stack's region cannot use it, so the grant (kms:ViaService of that region) would never apply.
    const keyFailure = await packagingFailure([
      '--stage',
      'prod',
      '--region',
      'us-east-1',
      '--param',
      `secretKmsKeyArns=${SECRET_KEY}`,
    ]);
    expect(keyFailure).toContain(
      `The stack deploys to us-east-1, but these ARNs are in another region: ${SECRET_KEY}.`,
    );
    expect(failure).toContain('deploy with --region <theirs> (or AWS_REGION)');
    expect(failure).not.toMatch(/^\s+at /m);
  }, 120_000);

  it('checks regions in the plugin hook against the region osls deploys to', () => {
    const compiled = { Resources: { A: { Properties: { Topic: ALARM_TOPIC } } } };
    const serverless = (region: string) => ({
      getProvider: () => ({ getRegion: () => region }),
      service: { provider: { compiledCloudFormationTemplate: compiled } },
    });
    expect(() =>
      new ResourceArnsPlugin(serverless('eu-west-1')).hooks[
        'before:aws:package:finalize:saveServiceState'
      ]?.(),
    ).not.toThrow();
    expect(() =>
      new ResourceArnsPlugin(serverless('eu-central-1')).hooks[
        'before:aws:package:finalize:saveServiceState'
      ]?.(),
    ).toThrow(
      expect.objectContaining({ name: 'ServerlessError', message: expect.stringContaining(ALARM_TOPIC) }),
    );
  });
});

describe('snapshots table', () => {
  it('is keyed by tenant and ISO time, on demand, with TTL, PITR and encryption', () => {
    const table = props(dev, 'SnapshotsTable');
    expect(table.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.KeySchema).toEqual([
      { AttributeName: 'tenantId', KeyType: 'HASH' },
      { AttributeName: 'observedAt', KeyType: 'RANGE' },
    ]);
    expect(table.AttributeDefinitions).toEqual([
      { AttributeName: 'tenantId', AttributeType: 'S' },
      { AttributeName: 'observedAt', AttributeType: 'S' },
    ]);
    expect(table.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(table.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    expect(table.SSESpecification).toEqual({ SSEEnabled: true });
  });

  it('is protected from deletion except in dev', () => {
    expect(props(dev, 'SnapshotsTable').DeletionProtectionEnabled).toBe(false);
    expect(props(prod, 'SnapshotsTable').DeletionProtectionEnabled).toBe(true);
  });
});

describe('snapshot triggers', () => {
  it('reads the queue in batches of 10 and reports partial failures', () => {
    const [mappings] = [ofType(dev, 'AWS::Lambda::EventSourceMapping')];
    expect(mappings).toHaveLength(1);
    const mapping = record(mappings[0]?.[1].Properties, 'mapping');
    expect(mapping.EventSourceArn).toEqual({ 'Fn::GetAtt': ['SnapshotQueue', 'Arn'] });
    expect(mapping.FunctionName).toEqual({ 'Fn::GetAtt': ['SnapshotLambdaFunction', 'Arn'] });
    expect(mapping.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    expect(mapping.BatchSize).toBe(10);
  });

  it('caps the snapshot functions the queue runs at once, so a burst of requests cannot flood KooDrive', () => {
    const scaling = (pkg: Packaged) =>
      record(ofType(pkg, 'AWS::Lambda::EventSourceMapping')[0]?.[1].Properties, 'mapping').ScalingConfig;
    expect(scaling(dev)).toEqual({ MaximumConcurrency: 2 });
    expect(scaling(prod)).toEqual({ MaximumConcurrency: 4 });
  });

  it('gives the queue a visibility timeout of six function timeouts and a dead-letter queue', () => {
    const queue = props(dev, 'SnapshotQueue');
    const timeout = Number(props(dev, 'SnapshotLambdaFunction').Timeout);
    expect(Number(queue.VisibilityTimeout)).toBeGreaterThanOrEqual(6 * timeout);
    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': ['SnapshotDeadLetterQueue', 'Arn'] },
      maxReceiveCount: 5,
    });
    for (const id of ['SnapshotDeadLetterQueue', 'ScheduleFailureQueue', 'EventDeadLetterQueue']) {
      expect(props(dev, id).MessageRetentionPeriod).toBe(14 * 24 * 3600);
    }
  });

  it('fires on the schedule with the scheduled event itself', () => {
    const rules = ofType(dev, 'AWS::Events::Rule')
      .map(([, r]) => record(r.Properties, 'rule'))
      .filter((r) => r.ScheduleExpression !== undefined);
    expect(rules).toHaveLength(1);
    expect(rules[0]?.ScheduleExpression).toBe('rate(15 minutes)');
    expect(rules[0]?.State).toBe('ENABLED');
    const target = record(array(rules[0]?.Targets, 'Targets')[0], 'target');
    expect(target.Arn).toEqual({ 'Fn::GetAtt': ['SnapshotLambdaFunction', 'Arn'] });
    expect(target.Input).toBeUndefined();
  });

  it('alarms when two runs of the schedule store nothing (not one), and judges ratios over as long, whatever the schedule', () => {
    // Two periods and 5 minutes: one missed run leaves a gap of two periods, which stays quiet.
    const period = (pkg: Packaged) =>
      JSON.stringify(props(pkg, 'NoSnapshotStoredAlarm').Metrics).match(/"Period":(\d+)/)?.[1];
    expect(period(dev)).toBe('2100');
    expect(period(prod)).toBe('7500');
    // The ratio alarms look at a window that holds one run's metrics too.
    const ratio = (pkg: Packaged) =>
      JSON.stringify(props(pkg, 'AllocatedRatio90Alarm').Metrics).match(/"Period":(\d+)/)?.[1];
    expect(ratio(dev)).toBe('2100');
    expect(ratio(prod)).toBe('7500');
    const schedule = ofType(prod, 'AWS::Events::Rule')
      .map(([, r]) => record(r.Properties, 'rule'))
      .find((r) => r.ScheduleExpression !== undefined);
    expect(schedule?.ScheduleExpression).toBe('rate(1 hour)');
  });

  it('warns, when packaging, that one run cannot reach every tenant while KooDrive is slow, and packages all the same', async () => {
    // The defaults fit 144 tenants (8 lanes of ⌊280 s ÷ 15.3 s⌋); dev's one and prod's four fit.
    expect(dev.output).not.toContain('A snapshot run may not reach');
    expect(prod.output).not.toContain('A snapshot run may not reach');
    const dir = await mkdtemp(path.join(tmpdir(), 'koodrive-package-'));
    dirs.push(dir);
    const tenants = Array.from({ length: 150 }, (_, i) => `t${i}`).join(',');
    const many = await packageStage(dir, ['--stage', 'dev', '--param', `tenants=${tenants}`]);
    expect(many.output).toContain(
      'Warning: A snapshot run may not reach all 150 tenants while KooDrive is slow',
    );
    expect(many.output).toContain('144 tenants fit');
    expect(many.output).toContain('raise snapshotConcurrency to at least 9');
    expect(props(many, 'SnapshotLambdaFunction').Timeout).toBe(300);
  }, 120_000);

  it('refuses, when packaging, a stage too long for the rule’s name, saying so instead of a schema error', async () => {
    const stage = 'customer-acceptance-eu-west1';
    const failure = await packagingFailure(['--stage', stage]);
    expect(failure).toContain(
      `The stage name '${stage}' is 28 characters, over the 26 that fit: it is part of the Snapshot Requested rule's name`,
    );
    expect(failure).toContain('Deploy with a stage name of at most 26 characters.');
    expect(failure).not.toContain('must NOT have more than 64 characters');
    expect(failure).not.toMatch(/^\s+at /m);
  }, 120_000);

  it('retries failed asynchronous invocations twice, then sends them to the failure queue', () => {
    const config = props(dev, 'SnapshotLambdaEvConf');
    expect(config.MaximumRetryAttempts).toBe(2);
    // An event held back over an hour (throttled) is not run: it would file late numbers under its old
    // time. Long enough for its own retries: three runs of the function's timeout and Lambda's 1- and
    // 2-minute waits between them.
    expect(config.MaximumEventAgeInSeconds).toBe(3600);
    const timeout = Number(props(dev, 'SnapshotLambdaFunction').Timeout);
    expect(Number(config.MaximumEventAgeInSeconds)).toBeGreaterThan(3 * timeout + 180);
    expect(config.DestinationConfig).toEqual({
      OnFailure: { Destination: { 'Fn::GetAtt': ['ScheduleFailureQueue', 'Arn'] } },
    });
  });

  it('takes Snapshot Requested events from the configured bus, with retries and a dead-letter queue', () => {
    for (const [pkg, bus, source] of [
      // Any source but its own by default (the contract names none); snapshotRequestSources narrows it,
      // and from --param (a string) becomes the list EventBridge requires.
      [dev, undefined, [{ 'anything-but': ['koodrive.allocation'] }]],
      [prod, 'koodrive-prod', ['ops.scripts', 'ops.capacity']],
    ] as const) {
      const rules = ofType(pkg, 'AWS::Events::Rule')
        .map(([, r]) => record(r.Properties, 'rule'))
        .filter((r) => r.EventPattern !== undefined);
      expect(rules).toHaveLength(1);
      const rule = rules[0] ?? {};
      expect(rule.EventPattern).toEqual({ source, 'detail-type': ['Snapshot Requested'] });
      expect(rule.EventBusName).toBe(bus);
      const target = record(array(rule.Targets, 'Targets')[0], 'target');
      expect(target.RetryPolicy).toEqual({ MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 3 });
      expect(target.DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': ['EventDeadLetterQueue', 'Arn'] } });

      // The dead-letter queue admits EventBridge for this rule only, on either bus.
      const policy = record(props(pkg, 'EventDeadLetterQueuePolicy').PolicyDocument, 'PolicyDocument');
      const statement = record(array(policy.Statement, 'Statement')[0], 'statement');
      expect(statement.Principal).toEqual({ Service: 'events.amazonaws.com' });
      expect(statement.Action).toBe('sqs:SendMessage');
      const sourceArns = array(
        record(record(statement.Condition, 'Condition').ArnLike, 'ArnLike')['aws:SourceArn'],
        '',
      );
      const ruleName = String(rule.Name);
      // Tagged with its bus, so that moving to another bus replaces the rule under a new name.
      expect(ruleName).toMatch(
        bus === undefined
          ? /^koodrive-allocation-dev-requested-default$/
          : /^koodrive-allocation-prod-requested-[0-9a-f]{6}$/,
      );
      expect(ruleName.length).toBeLessThanOrEqual(64);
      const ruleArn = `arn:\${AWS::Partition}:events:\${AWS::Region}:\${AWS::AccountId}:rule/${bus === undefined ? '' : '*/'}${ruleName}`;
      expect(sourceArns).toContainEqual({ 'Fn::Sub': ruleArn });
    }
  });
});

describe('HTTP API', () => {
  const routeKeys = [
    '$default',
    'GET /allocation',
    'GET /dashboard',
    'GET /tenants/{tenantId}/allocation',
    'GET /tenants/{tenantId}/allocation/history',
    'GET /tenants/{tenantId}/allocation/history.svg',
  ];

  it('throttles every route at the stage, from the stage parameters', () => {
    expect(props(dev, 'HttpApiStage').DefaultRouteSettings).toEqual({
      DetailedMetricsEnabled: false,
      ThrottlingRateLimit: 50,
      ThrottlingBurstLimit: 100,
    });
    // A --param arrives as a string; CloudFormation reads it as the number.
    const prodSettings = record(props(prod, 'HttpApiStage').DefaultRouteSettings, 'DefaultRouteSettings');
    expect(Number(prodSettings.ThrottlingRateLimit)).toBe(5);
    expect(prodSettings.ThrottlingBurstLimit).toBe(100);
  });

  it('writes an access log line per request (who, what, status, latency; no header or body) unless turned off', () => {
    const settings = record(props(dev, 'HttpApiStage').AccessLogSettings, 'AccessLogSettings');
    expect(settings.DestinationArn).toEqual({ 'Fn::GetAtt': ['HttpApiLogGroup', 'Arn'] });
    const format = record(JSON.parse(String(settings.Format)), 'access log format');
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      caller: '$context.identity.userArn',
      jwtSubject: '$context.authorizer.claims.sub',
      routeKey: '$context.routeKey',
      status: '$context.status',
      responseLatencyMs: '$context.responseLatency',
    });
    // Nothing a caller sends beyond the route: no headers, query strings or bodies.
    expect(Object.values(format).join(' ')).not.toMatch(/header|querystring|body|requestOverride/i);
    expect(props(dev, 'HttpApiLogGroup')).toEqual({
      LogGroupName: '/aws/http-api/koodrive-allocation-dev',
      RetentionInDays: 30,
    });
    expect(props(prod, 'HttpApiStage').AccessLogSettings).toBeUndefined();
    expect(prod.resources.HttpApiLogGroup).toBeUndefined();
  });

  it('answers browsers of the configured origins only (CORS), and none by default', () => {
    expect(props(dev, 'HttpApi').CorsConfiguration).toBeUndefined();
    expect(props(prod, 'HttpApi').CorsConfiguration).toEqual({
      AllowOrigins: ['https://dash.example.com', 'https://ops.example.com'],
      AllowMethods: ['GET'],
      AllowHeaders: [
        'authorization',
        'content-type',
        'x-amz-date',
        'x-amz-security-token',
        'x-amz-content-sha256',
      ],
      ExposeHeaders: ['x-trace-id'],
      MaxAge: 600,
    });
  });

  it('lets preflights through an unauthorized OPTIONS route when CORS is on, and only then', () => {
    // The authorized $default route would otherwise catch them: a preflight carries no credentials.
    const routeOf = (pkg: Packaged) =>
      ofType(pkg, 'AWS::ApiGatewayV2::Route')
        .map(([, r]) => record(r.Properties, 'route'))
        .find((r) => r.RouteKey === 'OPTIONS /{proxy+}');
    const preflight = routeOf(prod);
    expect(preflight?.AuthorizationType).toBeUndefined();
    expect(preflight?.AuthorizerId).toBeUndefined();
    expect(preflight?.Target).toEqual(
      record(
        ofType(prod, 'AWS::ApiGatewayV2::Route')
          .map(([, r]) => record(r.Properties, 'route'))
          .find((r) => r.RouteKey === '$default'),
        '$default',
      ).Target,
    );
    expect(routeOf(dev)).toBeUndefined();
  });

  it('protects every route with IAM by default', () => {
    const routes = ofType(dev, 'AWS::ApiGatewayV2::Route').map(([, r]) => record(r.Properties, 'route'));
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(routeKeys);
    for (const route of routes) {
      expect(route.AuthorizationType, String(route.RouteKey)).toBe('AWS_IAM');
      expect(route.AuthorizationScopes, String(route.RouteKey)).toBeUndefined();
    }
    expect(ofType(dev, 'AWS::ApiGatewayV2::Authorizer')).toHaveLength(0);
  });

  it('protects every route with the JWT authorizer when asked', () => {
    const authorizers = ofType(prod, 'AWS::ApiGatewayV2::Authorizer');
    expect(authorizers).toHaveLength(1);
    const [authorizerId = '', authorizer = {}] = authorizers[0] ?? [];
    expect(record(authorizer.Properties, 'authorizer').JwtConfiguration).toEqual({
      Audience: ['koodrive-allocation'],
      Issuer: 'https://issuer.example.com/',
    });
    const routes = ofType(prod, 'AWS::ApiGatewayV2::Route')
      .map(([, r]) => record(r.Properties, 'route'))
      .filter((r) => r.RouteKey !== 'OPTIONS /{proxy+}');
    expect(routes).toHaveLength(routeKeys.length);
    for (const route of routes) {
      expect(route.AuthorizationType).toBe('JWT');
      expect(route.AuthorizerId).toEqual({ Ref: authorizerId });
      // jwtScopes: a token must also carry one of them.
      expect(route.AuthorizationScopes).toEqual(['koodrive-allocation/read', 'ops/admin']);
    }
  });
});

describe('template', () => {
  it('is one CloudFormation accepts: resource types, property names and types, required properties, GetAtt attributes', () => {
    // Checked against the AWS resource schemas, so a typo in serverless.yml's `resources` fails here, not in a deploy.
    expect(templateProblems(dev.template)).toEqual([]);
    expect(templateProblems(prod.template)).toEqual([]);
  });

  it('refers only to resources it defines or to AWS pseudo parameters', () => {
    for (const pkg of [dev, prod]) {
      const defined = new Set(Object.keys(pkg.resources));
      const dangling = [...references(pkg.template)].filter(
        (id) => !defined.has(id) && !id.startsWith('AWS::'),
      );
      expect(dangling).toEqual([]);
    }
  });

  it('has no unresolved Serverless variable left', () => {
    const text = JSON.stringify(dev.template);
    expect(text).not.toMatch(/\$\{(param|self|opt|env|sls|file|tenantSecretArns|eventBusArn):/);
  });

  it('outputs the API URL, the table name and the queue URL', () => {
    const outputs = record(dev.template.Outputs, 'Outputs');
    expect(outputs).toHaveProperty('HttpApiUrl');
    expect(record(outputs.SnapshotsTableName, 'output').Value).toEqual({ Ref: 'SnapshotsTable' });
    expect(record(outputs.SnapshotQueueUrl, 'output').Value).toEqual({ Ref: 'SnapshotQueue' });
  });
});

describe('monitoring', () => {
  it('alarms on each function, each dead-letter queue, stale snapshots and each threshold, to the alarm topic', () => {
    const alarms = ofType(prod, 'AWS::CloudWatch::Alarm').map(([id]) => id);
    for (const fn of FUNCTIONS) {
      const name = logicalIdOf(fn);
      expect(alarms).toContain(`${name}ErrorsAlarm`);
      expect(alarms).toContain(`${name}ThrottlesAlarm`);
    }
    for (const queue of ['SnapshotDeadLetterQueue', 'ScheduleFailureQueue', 'EventDeadLetterQueue']) {
      expect(resource(prod, queue).Type).toBe('AWS::SQS::Queue');
      expect(alarms).toContain(`${queue}MessagesAlarm`);
    }
    expect(alarms).toEqual(
      expect.arrayContaining([
        'NoSnapshotStoredAlarm',
        'SnapshotFailuresAlarm',
        'AllocatedRatio80Alarm',
        'AllocatedRatio90Alarm',
        'AllocatedRatio100Alarm',
      ]),
    );
    expect(props(prod, 'SnapshotErrorsAlarm').AlarmActions).toEqual([ALARM_TOPIC]);
    expect(props(dev, 'SnapshotErrorsAlarm').AlarmActions).toBeUndefined();
    expect(props(prod, 'AllocationDashboard').DashboardName).toEqual({
      'Fn::Sub': 'koodrive-allocation-prod-$' + '{AWS::Region}-allocation',
    });
  });

  it('alarms on failed queued snapshots, which are no Lambda errors, across the queue’s retry gap', () => {
    // ReportBatchItemFailures: a failed message is returned, not thrown, so only SnapshotFailures sees it.
    expect(
      record(ofType(dev, 'AWS::Lambda::EventSourceMapping')[0]?.[1].Properties, 'mapping')
        .FunctionResponseTypes,
    ).toEqual(['ReportBatchItemFailures']);
    const alarm = props(dev, 'SnapshotFailuresAlarm');
    expect(alarm).toMatchObject({
      AlarmName: 'koodrive-allocation-dev-snapshot-failures',
      Namespace: 'KooDriveAllocation',
      MetricName: 'SnapshotFailures',
      Dimensions: [{ Name: 'service', Value: 'koodrive-allocation-dev' }],
      Statistic: 'Sum',
      Period: 300,
      DatapointsToAlarm: 1,
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    // The window spans the queue's visibility timeout, read from the queue itself.
    const gap = Number(props(dev, 'SnapshotQueue').VisibilityTimeout);
    expect(Number(alarm.EvaluationPeriods) * 300).toBeGreaterThan(gap);
    expect(props(prod, 'SnapshotFailuresAlarm').AlarmActions).toEqual([ALARM_TOPIC]);
  });

  it('refuses, when packaging, per-tenant alarms that take the stack past CloudFormation’s 500 resources', async () => {
    // A raised metricsInsightsAlarmQuota lets 100 tenants × 5 thresholds through: 500 alarms and the
    // stack's own resources, which CloudFormation would refuse when validating the template.
    const tenants = Array.from({ length: 100 }, (_, i) => `t${i}`).join(',');
    const failure = await packagingFailure([
      '--stage',
      'prod',
      '--param',
      `tenants=${tenants}`,
      '--param',
      'thresholdAlarmsPerTenant=true',
      '--param',
      'metricsInsightsAlarmQuota=1000',
      '--param',
      'allocationThresholds=0.5,0.8,0.9,0.95,1.0',
    ]);
    expect(failure).toMatch(/The stack would declare 5\d\d resources, over the 500 CloudFormation allows/);
    expect(failure).toContain("500 of them are thresholdAlarmsPerTenant's alarms");
    expect(failure).not.toMatch(/^\s+at /m);
  }, 120_000);

  it('gives the functions the metrics namespace and service the alarms and dashboard read', () => {
    for (const fn of FUNCTIONS) {
      const variables = record(
        record(props(dev, `${logicalIdOf(fn)}LambdaFunction`).Environment, 'Environment').Variables,
        'Variables',
      );
      expect(variables.POWERTOOLS_METRICS_NAMESPACE).toBe('KooDriveAllocation');
      // Per stage: two stages in one account keep their metrics, alarms and dashboards apart.
      expect(variables.POWERTOOLS_SERVICE_NAME).toBe('koodrive-allocation-dev');
      expect(variables.POWERTOOLS_LOG_LEVEL).toBe('INFO');
    }
  });
});

describe('the local stage', () => {
  it('names its table, publishes to the local bus, leaves the schedule to npm start and points at the simulator', () => {
    const environment = record(record(localConfig.provider, 'provider').environment, 'environment');
    expect(environment.SNAPSHOT_TABLE).toBe('koodrive-allocation-local-snapshots');
    expect(environment.HISTORY_CURSOR_KEY).toBe('koodrive-allocation-local-history-cursor');
    expect(environment.EVENT_BUS_NAME).toBe('default');
    expect(environment.KOODRIVE_BASE_URL).toBe('http://127.0.0.1:8787');
    expect(environment.KOODRIVE_TENANTS).toBe('demo=koodrive/demo,lab=koodrive/lab');
    const snapshot = record(record(localConfig.functions, 'functions').snapshot, 'snapshot');
    const schedule = array(snapshot.events, 'events')
      .map((e) => record(e, 'event'))
      .find((e) => e.schedule !== undefined);
    expect(record(schedule?.schedule, 'schedule').enabled).toBe(false);
  });
});
