/**
 * Test support for the snapshot and history tests: an in-memory dynalite on 127.0.0.1 (port 0) with
 * the snapshot table's key schema (as serverless.yml declares it), and a client pointed at it.
 */
import { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ensureTables, readTableSchemas } from '../../local/dynamodb.ts';

export const TEST_REGION = 'us-east-1';
export const TEST_CREDENTIALS = { accessKeyId: 'test-access-key', secretAccessKey: 'test-secret-key' };

export interface Dynalite {
  readonly url: string;
  /** A real SDK client on this endpoint. */
  readonly client: DynamoDBClient;
  /** Creates a table from serverless.yml's SnapshotsTable definition (HASH tenantId, RANGE observedAt). */
  createSnapshotTable(tableName: string): Promise<void>;
  close(): Promise<void>;
}

type DynaliteFactory = (options: Record<string, unknown>) => unknown;

function isFactory(value: unknown): value is DynaliteFactory {
  return typeof value === 'function';
}

/** A DynamoDB client for a local endpoint with dummy credentials. */
export function localDynamoClient(url: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint: url,
    region: TEST_REGION,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  });
}

/** Starts dynalite in memory; close() stops it and the client. */
export async function startDynalite(): Promise<Dynalite> {
  // dynalite is CommonJS without types: load it untyped and check what it is.
  const dynalite: unknown = createRequire(import.meta.url)('dynalite');
  if (!isFactory(dynalite)) throw new Error('dynalite does not export a function');
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  if (!(server instanceof Server)) throw new Error('dynalite did not return an HTTP server');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address: AddressInfo | string | null = server.address();
  if (address === null || typeof address === 'string') throw new Error('dynalite is not listening on TCP');
  const url = `http://127.0.0.1:${address.port}`;
  const client = localDynamoClient(url);
  return {
    url,
    client,
    async createSnapshotTable(tableName) {
      // The table exactly as serverless.yml declares it, not a copy kept here.
      const schema = (await readTableSchemas()).get('SnapshotsTable');
      if (schema === undefined) throw new Error('serverless.yml declares no SnapshotsTable');
      await ensureTables(client, { [tableName]: schema });
    },
    async close() {
      client.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
