/**
 * The local stack's DynamoDB: dynalite (a DynamoDB API server on LevelDB, on disk or in memory) with the tables
 * created from `serverless.yml`'s own `AWS::DynamoDB::Table` resources, so local and deployed keys never drift.
 * dynalite has no UpdateTimeToLive, so TTL, PITR, SSE and deletion protection are left to AWS.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type AttributeDefinition,
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  type LocalSecondaryIndex,
  type Projection,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import { type CollectionTag, parse, type ScalarTag, type Tags } from 'yaml';
import { guardOnLoopback } from './host-check.ts';

/** `serverless.yml` at the repository root. */
export const SERVERLESS_YML = fileURLToPath(new URL('../serverless.yml', import.meta.url));

/** A table's shape from `serverless.yml`, everything CreateTable needs but the name. */
export type TableSchema = Omit<CreateTableCommandInput, 'TableName'>;

/** Options of {@link startLocalDynamoDb}. */
export interface LocalDynamoDbOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** LevelDB directory; in memory when absent. */
  path?: string;
  /** Tables to create (when missing): `serverless.yml` logical id → table name. */
  tables?: Record<string, string>;
  serverlessYmlPath?: string;
}

/** Handle on a running local DynamoDB endpoint. */
export interface LocalDynamoDb {
  /** `http://HOST:PORT`, for `AWS_ENDPOINT_URL_DYNAMODB`. */
  readonly url: string;
  readonly port: number;
  /** Stops listening, drops open connections and closes the store. */
  close(): Promise<void>;
}

type Dynalite = (options: Record<string, unknown>) => unknown;

function isFunction(value: unknown): value is Dynalite {
  return typeof value === 'function';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** CloudFormation's short-form intrinsics (`!Ref X`, `!GetAtt [A, Arn]`, …) read as their long form. */
const INTRINSICS = [
  'Ref',
  'Condition',
  'Base64',
  'Cidr',
  'FindInMap',
  'GetAtt',
  'GetAZs',
  'ImportValue',
  'Join',
  'Select',
  'Split',
  'Sub',
  'Transform',
  'And',
  'Equals',
  'If',
  'Not',
  'Or',
];
const CLOUDFORMATION_TAGS: Tags = INTRINSICS.flatMap((name): (ScalarTag | CollectionTag)[] => {
  const key = name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
  const tag = `!${name}`;
  return [
    { tag, resolve: (value: string) => ({ [key]: value }) },
    { tag, collection: 'seq', resolve: (value) => ({ [key]: value.toJSON() }) },
    { tag, collection: 'map', resolve: (value) => ({ [key]: value.toJSON() }) },
  ];
});

function text(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '')
    throw new Error(`serverless.yml: ${where} must be a string.`);
  return value;
}

function list(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`serverless.yml: ${where} must be a list.`);
  return value;
}

function oneOf<const T extends string>(value: unknown, allowed: readonly T[], where: string): T {
  const found = allowed.find((candidate) => candidate === value);
  if (found === undefined) throw new Error(`serverless.yml: ${where} must be one of ${allowed.join(', ')}.`);
  return found;
}

function keySchema(value: unknown, where: string): KeySchemaElement[] {
  return list(value, where).map((item, i) => {
    const element = isRecord(item) ? item : {};
    return {
      AttributeName: text(element.AttributeName, `${where}[${i}].AttributeName`),
      KeyType: oneOf(element.KeyType, ['HASH', 'RANGE'], `${where}[${i}].KeyType`),
    };
  });
}

function projection(value: unknown, where: string): Projection {
  const p = isRecord(value) ? value : {};
  const type = oneOf(p.ProjectionType ?? 'ALL', ['ALL', 'KEYS_ONLY', 'INCLUDE'], `${where}.ProjectionType`);
  return p.NonKeyAttributes === undefined
    ? { ProjectionType: type }
    : {
        ProjectionType: type,
        NonKeyAttributes: list(p.NonKeyAttributes, `${where}.NonKeyAttributes`).map((a, i) =>
          text(a, `${where}.NonKeyAttributes[${i}]`),
        ),
      };
}

/** Local capacity does not matter; a throughput given by a variable or intrinsic falls back to 5. */
function throughput(value: unknown): { ReadCapacityUnits: number; WriteCapacityUnits: number } {
  const t = isRecord(value) ? value : {};
  const units = (v: unknown) => (typeof v === 'number' && v > 0 ? v : 5);
  return { ReadCapacityUnits: units(t.ReadCapacityUnits), WriteCapacityUnits: units(t.WriteCapacityUnits) };
}

function tableSchema(logicalId: string, properties: Record<string, unknown>): TableSchema {
  const where = `resources.Resources.${logicalId}.Properties`;
  const billingMode = oneOf(
    properties.BillingMode ?? 'PROVISIONED',
    ['PAY_PER_REQUEST', 'PROVISIONED'],
    `${where}.BillingMode`,
  );
  const provisioned = billingMode === 'PROVISIONED';
  const attributeDefinitions: AttributeDefinition[] = list(
    properties.AttributeDefinitions,
    `${where}.AttributeDefinitions`,
  ).map((item, i) => {
    const a = isRecord(item) ? item : {};
    return {
      AttributeName: text(a.AttributeName, `${where}.AttributeDefinitions[${i}].AttributeName`),
      AttributeType: oneOf(
        a.AttributeType,
        ['S', 'N', 'B'],
        `${where}.AttributeDefinitions[${i}].AttributeType`,
      ),
    };
  });
  const schema: TableSchema = {
    BillingMode: billingMode,
    AttributeDefinitions: attributeDefinitions,
    KeySchema: keySchema(properties.KeySchema, `${where}.KeySchema`),
    ...(provisioned ? { ProvisionedThroughput: throughput(properties.ProvisionedThroughput) } : {}),
  };
  /** What a global and a local secondary index both have: a name, its keys and its projection. */
  const secondaryIndex = (index: Record<string, unknown>, at: string): LocalSecondaryIndex => ({
    IndexName: text(index.IndexName, `${at}.IndexName`),
    KeySchema: keySchema(index.KeySchema, `${at}.KeySchema`),
    Projection: projection(index.Projection, `${at}.Projection`),
  });
  if (properties.GlobalSecondaryIndexes !== undefined) {
    schema.GlobalSecondaryIndexes = list(
      properties.GlobalSecondaryIndexes,
      `${where}.GlobalSecondaryIndexes`,
    ).map((item, i): GlobalSecondaryIndex => {
      const index = isRecord(item) ? item : {};
      return {
        ...secondaryIndex(index, `${where}.GlobalSecondaryIndexes[${i}]`),
        ...(provisioned ? { ProvisionedThroughput: throughput(index.ProvisionedThroughput) } : {}),
      };
    });
  }
  if (properties.LocalSecondaryIndexes !== undefined) {
    schema.LocalSecondaryIndexes = list(
      properties.LocalSecondaryIndexes,
      `${where}.LocalSecondaryIndexes`,
    ).map((item, i) => secondaryIndex(isRecord(item) ? item : {}, `${where}.LocalSecondaryIndexes[${i}]`));
  }
  return schema;
}

/** A serverless.yml text as data, CloudFormation's short-form intrinsics (`!Ref`, `!Sub`, …) included. */
export function parseServerlessYml(serverlessYml: string): unknown {
  return parse(serverlessYml, { customTags: CLOUDFORMATION_TAGS });
}

/** Every `AWS::DynamoDB::Table` in a serverless.yml text: logical id → schema. */
export function parseTableSchemas(serverlessYml: string): Map<string, TableSchema> {
  const doc = parseServerlessYml(serverlessYml);
  const resources = isRecord(doc) && isRecord(doc.resources) ? doc.resources.Resources : undefined;
  const tables = new Map<string, TableSchema>();
  if (!isRecord(resources)) return tables;
  for (const [logicalId, resource] of Object.entries(resources)) {
    if (!isRecord(resource) || resource.Type !== 'AWS::DynamoDB::Table') continue;
    tables.set(logicalId, tableSchema(logicalId, isRecord(resource.Properties) ? resource.Properties : {}));
  }
  return tables;
}

/** Reads {@link parseTableSchemas} from a file (the repository's `serverless.yml` by default). */
export async function readTableSchemas(file: string = SERVERLESS_YML): Promise<Map<string, TableSchema>> {
  return parseTableSchemas(await readFile(file, 'utf8'));
}

function sameKeys(
  a: readonly KeySchemaElement[] | undefined,
  b: readonly KeySchemaElement[] | undefined,
): boolean {
  const show = (keys: readonly KeySchemaElement[] | undefined) =>
    JSON.stringify((keys ?? []).map((k) => [k.AttributeName, k.KeyType]));
  return show(a) === show(b);
}

/**
 * Waits until a new table is ACTIVE: dynalite answers CreateTable with CREATING and, with data on disk,
 * turns it ACTIVE only after its own write, so an item written at once could find no table.
 */
async function waitUntilActive(client: DynamoDBClient, tableName: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return;
    if (Date.now() > until)
      throw new Error(`Local table ${tableName} is still ${Table?.TableStatus} after ${timeoutMs} ms.`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Creates each table that does not exist yet; an existing one must have the same key schema (a table kept on
 * disk from an older `serverless.yml` is reported, not silently reused).
 */
export async function ensureTables(
  client: DynamoDBClient,
  tables: Record<string, TableSchema>,
  /** Where the data is kept on disk, named in the error. */
  dataPath?: string,
): Promise<void> {
  for (const [tableName, schema] of Object.entries(tables)) {
    try {
      await client.send(new CreateTableCommand({ ...schema, TableName: tableName }));
      await waitUntilActive(client, tableName);
    } catch (error) {
      if (!(error instanceof ResourceInUseException)) throw error;
      const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
      if (!sameKeys(Table?.KeySchema, schema.KeySchema)) {
        throw new Error(
          `Local table ${tableName} has another key schema than serverless.yml; delete its data directory` +
            `${dataPath === undefined ? '' : ` (${dataPath})`} to recreate it, with no snapshots.`,
        );
      }
    }
  }
}

/** Starts dynalite and creates the requested tables from `serverless.yml`. */
export async function startLocalDynamoDb(options: LocalDynamoDbOptions = {}): Promise<LocalDynamoDb> {
  const host = options.host ?? '127.0.0.1';
  const wanted = Object.entries(options.tables ?? {});
  const schemas =
    wanted.length === 0 ? new Map<string, TableSchema>() : await readTableSchemas(options.serverlessYmlPath);
  const toCreate: Record<string, TableSchema> = {};
  for (const [logicalId, tableName] of wanted) {
    const schema = schemas.get(logicalId);
    if (schema === undefined)
      throw new Error(`serverless.yml has no AWS::DynamoDB::Table named ${logicalId}.`);
    toCreate[tableName] = schema;
  }

  if (options.path !== undefined) await mkdir(options.path, { recursive: true });
  const dynalite: unknown = createRequire(import.meta.url)('dynalite');
  if (!isFunction(dynalite)) throw new Error('The dynalite package does not export a function.');
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.path === undefined ? {} : { path: path.resolve(options.path) }),
  });
  if (!(server instanceof Server)) throw new Error('dynalite did not return an HTTP server.');
  guardOnLoopback(server, host);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address: AddressInfo | string | null = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const url = `http://${host}:${port}`;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
    });
    return closing;
  };

  const client = new DynamoDBClient({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    await ensureTables(client, toCreate, options.path === undefined ? undefined : path.resolve(options.path));
  } catch (error) {
    await close();
    throw error;
  } finally {
    client.destroy();
  }
  return { url, port, close };
}
