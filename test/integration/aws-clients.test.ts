/**
 * The AWS SDK clients' time limits (lib/aws/request-handler.ts) against an endpoint that accepts the
 * connection and never answers: the SDK's node:http handler only warns when `requestTimeout` passes
 * unless `throwOnRequestTimeout` is set, and then the call would wait until Lambda's own timeout.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AWS_REQUEST_HANDLER } from '../../lib/aws/request-handler.ts';
import { type SilentServer, startSilentServer } from '../support/silent-server.ts';

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url));
let silent: SilentServer;

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

  it('are all built with those limits in lib/', async () => {
    const files = (await readdir(LIB, { recursive: true })).filter((file) => file.endsWith('.ts'));
    const constructions: string[] = [];
    for (const file of files) {
      const text = await readFile(path.join(LIB, file), 'utf8');
      for (const match of text.matchAll(/new (\w+Client)\(([^)]*)\)/g))
        constructions.push(`${file}: ${match[0]}`);
    }
    expect(constructions.length).toBeGreaterThanOrEqual(3);
    for (const construction of constructions)
      expect(construction).toContain('requestHandler: AWS_REQUEST_HANDLER');
  });
});
