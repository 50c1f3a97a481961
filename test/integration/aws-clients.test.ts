/**
 * The AWS SDK clients' time limits (lib/aws/request-handler.ts) against an endpoint that accepts the
 * connection and never answers: the SDK's node:http handler only warns when `requestTimeout` passes
 * unless `throwOnRequestTimeout` is set, and then the call would wait until Lambda's own timeout.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AWS_REQUEST_HANDLER,
  DYNAMODB_MAX_ATTEMPTS,
  SECRETS_MANAGER_MAX_ATTEMPTS,
} from '../../lib/aws/request-handler.ts';
import { createEventBridgeClient } from '../../lib/events.ts';
import { createSecretsClient } from '../../lib/runtime.ts';
import { createDynamoClient } from '../../lib/snapshots/store.ts';
import { type SilentServer, startSilentServer } from '../support/silent-server.ts';

let silent: SilentServer;

/** The settings every Smithy HTTP handler reports once its first request resolved them. */
interface HttpHandlerLike {
  httpHandlerConfigs(): Record<string, unknown>;
}

beforeAll(async () => {
  silent = await startSilentServer();
});

afterAll(async () => {
  await silent.close();
});

/**
 * How one GetSecretValue to the silent endpoint ends within `waitMs`, with these handler options:
 * the error's name, 'answered', or 'still waiting'.
 */
async function outcomeWith(requestHandler: Record<string, unknown>, waitMs: number): Promise<string> {
  const client = new SecretsManagerClient({
    endpoint: silent.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
    // The logger takes the SDK's warning about the passed requestTimeout (it goes to the console otherwise).
    logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    requestHandler,
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('still waiting'), waitMs);
  });
  const settled = client.send(new GetSecretValueCommand({ SecretId: 'koodrive/acme' })).then(
    () => 'answered',
    (error: unknown) => (error instanceof Error ? error.name : 'rejected'),
  );
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
    client.destroy();
  }
}

describe('AWS SDK clients against an endpoint that never answers', () => {
  it('fail the call with TimeoutError once requestTimeout has passed', async () => {
    expect(await outcomeWith({ ...AWS_REQUEST_HANDLER, requestTimeout: 300 }, 3_000)).toBe('TimeoutError');
  });

  it('would keep waiting without throwOnRequestTimeout (why the setting is there)', async () => {
    const { throwOnRequestTimeout: _dropped, ...warnOnly } = AWS_REQUEST_HANDLER;
    expect(await outcomeWith({ ...warnOnly, requestTimeout: 300 }, 1_500)).toBe('still waiting');
  });

  it('are the limits of the clients the functions build', async () => {
    // Any endpoint that answers will do: the first call resolves the handler's settings.
    const answering = createServer((_req, res) => {
      res.writeHead(400, {
        'content-type': 'application/x-amz-json-1.1',
        'x-amzn-errortype': 'ValidationException',
      });
      res.end('{"__type":"ValidationException","message":"not here"}');
    });
    await new Promise<void>((resolve) => answering.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(answering.address() as AddressInfo).port}`;
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: url,
      AWS_ENDPOINT_URL_DYNAMODB: url,
      AWS_ENDPOINT_URL_EVENTBRIDGE: url,
    });
    const clients = [
      { client: createSecretsClient(), call: new GetSecretValueCommand({ SecretId: 'koodrive/acme' }) },
      { client: createDynamoClient(), call: new DescribeTableCommand({ TableName: 'snapshots' }) },
      { client: createEventBridgeClient(), call: new PutEventsCommand({ Entries: [{ Detail: '{}' }] }) },
    ] as const;
    try {
      for (const { client, call } of clients) {
        await (client.send as (command: unknown) => Promise<unknown>)(call).catch(() => undefined);
        expect(
          (client.config.requestHandler as unknown as HttpHandlerLike).httpHandlerConfigs(),
          client.constructor.name,
        ).toMatchObject(AWS_REQUEST_HANDLER);
      }
      // PutEvents is tried once (lib/events.ts): a retry of a call whose answer was lost publishes twice.
      expect(await clients[2].client.config.maxAttempts()).toBe(1);
      // Secrets Manager's tries are pinned: a read with no answer says "time limit × tries" with them.
      expect(await clients[0].client.config.maxAttempts()).toBe(SECRETS_MANAGER_MAX_ATTEMPTS);
      // DynamoDB's too (the SDK's default is 4): the snapshot run's margin and the publishing lease are
      // sized for these tries.
      expect(DYNAMODB_MAX_ATTEMPTS).toBe(3);
      expect(await clients[1].client.config.maxAttempts()).toBe(DYNAMODB_MAX_ATTEMPTS);
    } finally {
      for (const { client } of clients) client.destroy();
      process.env = saved;
      await new Promise((resolve) => answering.close(resolve));
    }
  });
});
