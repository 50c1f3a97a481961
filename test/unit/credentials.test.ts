import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { createCredentialsProvider, parseSecretString, REFETCH_INTERVAL_MS } from '../../lib/credentials.ts';
import { ConfigurationError, CredentialsUnavailableError } from '../../lib/errors.ts';

const TENANT = { tenantId: 'acme', secretId: 'koodrive/acme' };
const secret = (appSecret: string) => JSON.stringify({ appId: 'a', appSecret, userId: 'u' });

/** A Secrets Manager client whose answers the test releases one by one. */
function controllableClient() {
  const pending: Array<(value: string) => void> = [];
  const client = {
    send: (command: unknown) => {
      if (!(command instanceof GetSecretValueCommand)) throw new Error('unexpected command');
      return new Promise<{ SecretString: string }>((resolve) => {
        pending.push((value) => resolve({ SecretString: value }));
      });
    },
  };
  return { client: client as never, pending };
}

describe('parseSecretString', () => {
  it('accepts the contract shape and trims values', () => {
    expect(
      parseSecretString(
        's',
        JSON.stringify({ appId: ' a ', appSecret: 'b', userId: 'c', baseUrl: 'https://x.example/' }),
      ),
    ).toEqual({
      appId: 'a',
      appSecret: 'b',
      userId: 'c',
      baseUrl: 'https://x.example',
    });
  });

  it.each([
    [undefined, /no SecretString/],
    ['[1]', /not an object/],
    ['{"appId":"a","appSecret":"b"}', /lacks the required field 'userId'/],
    ['{"appId":1,"appSecret":"b","userId":"c"}', /field 'appId' that is not a non-empty string/],
    [
      '{"appId":"a","appSecret":"b","userId":"c","baseUrl":"nope"}',
      /Field 'baseUrl' of secret 's' is not a URL/,
    ],
    [
      '{"appId":"a","appSecret":"b","userId":"c","baseUrl":"http://koodrive.example"}',
      /Field 'baseUrl' of secret 's' must use https:/,
    ],
  ])('refuses %j with a configuration error naming the secret', (value, message) => {
    expect(() => parseSecretString('s', value)).toThrow(ConfigurationError);
    expect(() => parseSecretString('s', value)).toThrow(message);
  });

  it('reads JSON that starts with a byte order mark, as a file saved by a Windows editor does', () => {
    // e.g. put-secret-value --secret-string file://creds.json: the BOM stays in the SecretString.
    expect(
      parseSecretString('s', `\uFEFF${JSON.stringify({ appId: 'a', appSecret: 'b', userId: 'c' })}`),
    ).toEqual({
      appId: 'a',
      appSecret: 'b',
      userId: 'c',
    });
  });

  it('accepts an http baseUrl on loopback (the local stack) and never repeats a refused one', () => {
    const local = JSON.stringify({ appId: 'a', appSecret: 'b', userId: 'c', baseUrl: 'http://127.0.0.1:9' });
    expect(parseSecretString('s', local).baseUrl).toBe('http://127.0.0.1:9');
    const remote = JSON.stringify({ appId: 'a', appSecret: 'b', userId: 'c', baseUrl: 'http://kd.example' });
    expect(() => parseSecretString('s', remote)).toThrow(ConfigurationError);
    expect(() => parseSecretString('s', remote)).not.toThrow(/kd\.example/);
  });

  it('never repeats the secret value in its errors', () => {
    const error = (() => {
      try {
        parseSecretString('s', '{"appSecret": "hunter2-value", oops}');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.message).not.toContain('hunter2');
  });
});

describe('createCredentialsProvider', () => {
  describe('refetchAfterRefusal', () => {
    const credentials = (appSecret: string) => ({ appId: 'a', appSecret, userId: 'u' });

    it('reads the secret again after a refusal, then not for 30 s, then again', async () => {
      let clock = 1_000_000;
      const { client, pending } = controllableClient();
      const provider = createCredentialsProvider({ client, cacheSeconds: 300, now: () => clock });
      const first = provider.get(TENANT);
      pending[0]?.(secret('wrong'));
      await first;
      const refetch = provider.refetchAfterRefusal(TENANT, credentials('wrong'));
      expect(pending).toHaveLength(2);
      pending[1]?.(secret('wrong'));
      expect((await refetch)?.appSecret).toBe('wrong');
      clock += REFETCH_INTERVAL_MS - 1;
      expect(await provider.refetchAfterRefusal(TENANT, credentials('wrong'))).toBeUndefined();
      expect(pending).toHaveLength(2);
      clock += 1;
      const later = provider.refetchAfterRefusal(TENANT, credentials('wrong'));
      expect(pending).toHaveLength(3);
      pending[2]?.(secret('fixed'));
      expect((await later)?.appSecret).toBe('fixed');
      // The fixed value is cached for every later call.
      expect((await provider.get(TENANT)).appSecret).toBe('fixed');
      expect(pending).toHaveLength(3);
    });

    it('hands out a newer cached value without reading, also within the 30 s', async () => {
      const { client, pending } = controllableClient();
      const provider = createCredentialsProvider({ client, cacheSeconds: 300 });
      const first = provider.refetchAfterRefusal(TENANT, credentials('old'));
      pending[0]?.(secret('rotated'));
      expect((await first)?.appSecret).toBe('rotated');
      // A call that had signed with the old value before the read finished.
      expect((await provider.refetchAfterRefusal(TENANT, credentials('old')))?.appSecret).toBe('rotated');
      expect(pending).toHaveLength(1);
    });

    it('hands out the value the last refetch found also with SECRET_CACHE_SECONDS=0, within the 30 s', async () => {
      const { client, pending } = controllableClient();
      const provider = createCredentialsProvider({ client, cacheSeconds: 0 });
      const first = provider.refetchAfterRefusal(TENANT, credentials('old'));
      pending[0]?.(secret('rotated'));
      expect((await first)?.appSecret).toBe('rotated');
      // Another call, refused with the old value a moment later: nothing is cached, but the value read
      // after the first refusal is what it must try, not nothing.
      expect((await provider.refetchAfterRefusal(TENANT, credentials('old')))?.appSecret).toBe('rotated');
      // Refused with that very value: nothing newer to try within the 30 s.
      expect(await provider.refetchAfterRefusal(TENANT, credentials('rotated'))).toBeUndefined();
      expect(pending).toHaveLength(1);
    });

    it('with SECRET_CACHE_SECONDS=0, never hands out a value older than the one refused', async () => {
      const { client, pending } = controllableClient();
      const provider = createCredentialsProvider({ client, cacheSeconds: 0 });
      // A refusal of 'old': the read after it finds 'old' still there.
      const first = provider.refetchAfterRefusal(TENANT, credentials('old'));
      pending[0]?.(secret('old'));
      expect((await first)?.appSecret).toBe('old');
      // Then the secret is rotated, and a call reads the new value (nothing is cached) and is refused.
      const read = provider.get(TENANT);
      pending[1]?.(secret('rotated'));
      expect((await read).appSecret).toBe('rotated');
      // 'old' is older than what was refused, and was refused itself: nothing newer to try.
      expect(await provider.refetchAfterRefusal(TENANT, credentials('rotated'))).toBeUndefined();
      expect(pending).toHaveLength(2);
    });

    it('overtakes a read that began before the refusal, and caches the newer value', async () => {
      const { client, pending } = controllableClient();
      const provider = createCredentialsProvider({ client, cacheSeconds: 300 });
      const stale = provider.get(TENANT);
      const refetch = provider.refetchAfterRefusal(TENANT, credentials('old'));
      const joined = provider.refetchAfterRefusal(TENANT, credentials('old'));
      expect(pending).toHaveLength(2);
      pending[1]?.(secret('new'));
      pending[0]?.(secret('old'));
      expect((await refetch)?.appSecret).toBe('new');
      expect((await joined)?.appSecret).toBe('new');
      expect((await stale).appSecret).toBe('old');
      expect((await provider.get(TENANT)).appSecret).toBe('new');
      expect(pending).toHaveLength(2);
    });

    it('shares one read among concurrent refusals', async () => {
      const { client, pending } = controllableClient();
      const provider = createCredentialsProvider({ client, cacheSeconds: 300 });
      const refetches = Array.from({ length: 10 }, () =>
        provider.refetchAfterRefusal(TENANT, credentials('old')),
      );
      expect(pending).toHaveLength(1);
      pending[0]?.(secret('new'));
      expect((await Promise.all(refetches)).map((value) => value?.appSecret)).toEqual(Array(10).fill('new'));
    });
  });

  it('expires cached values after cacheSeconds', async () => {
    let clock = 0;
    const { client, pending } = controllableClient();
    const provider = createCredentialsProvider({ client, cacheSeconds: 10, now: () => clock });
    const first = provider.get(TENANT);
    pending[0]?.(secret('one'));
    await first;
    clock = 9_999;
    await provider.get(TENANT);
    expect(pending).toHaveLength(1);
    clock = 10_000;
    const second = provider.get(TENANT);
    pending[1]?.(secret('two'));
    expect((await second).appSecret).toBe('two');
  });

  it('ends a read at the caller’s deadline, lets it finish for the cache, and serves cached values past one', async () => {
    const { client, pending } = controllableClient();
    // A virtual clock and timer: the read never answers, so only the deadline's timer can end the call,
    // and the test fires it rather than timing the call on the wall clock.
    const clock = 1_000_000;
    const timers: { ms: number; fire: () => void }[] = [];
    const provider = createCredentialsProvider({
      client,
      cacheSeconds: 300,
      now: () => clock,
      startTimer: (fire, ms) => {
        timers.push({ ms, fire });
        return () => undefined;
      },
    });
    const call = provider.get(TENANT, { deadline: clock + 50 }).catch((e: unknown) => e);
    expect(timers.map((timer) => timer.ms)).toEqual([50]);
    timers[0]?.fire();
    const error = await call;
    expect(error).toBeInstanceOf(CredentialsUnavailableError);
    expect((error as Error).message).toMatch(
      /^Secrets Manager did not answer for tenant 'acme' \(secret 'koodrive\/acme'\) within the 50 ms this invocation had left/,
    );
    // The read itself goes on: its answer fills the cache, and the next call needs no read.
    pending[0]?.(secret('late'));
    await new Promise((resolve) => setImmediate(resolve));
    expect((await provider.get(TENANT, { deadline: clock - 1 })).appSecret).toBe('late');
    expect(pending).toHaveLength(1);
  });

  it('reads nothing when the deadline has passed, saying the invocation ran out of time', async () => {
    const { client, pending } = controllableClient();
    const provider = createCredentialsProvider({ client, cacheSeconds: 300 });
    await expect(provider.get(TENANT, { deadline: Date.now() - 10 })).rejects.toThrow(
      /^No time was left in this invocation to read the secret of tenant 'acme' \(secret 'koodrive\/acme'\): the live routes' 29 s cannot grow: lower KOODRIVE_TIMEOUT_MS × KOODRIVE_MAX_ATTEMPTS; in snapshot runs, raise the snapshot function's timeout or SNAPSHOT_CONCURRENCY\.$/,
    );
    expect(pending).toHaveLength(0);
    const first = provider.get(TENANT);
    pending[0]?.(secret('one'));
    const refused = await first;
    // A refusal's refetch obeys the deadline too: none left, no read, the window and the cache untouched…
    await expect(
      provider.refetchAfterRefusal(TENANT, refused, { deadline: Date.now() - 1 }),
    ).rejects.toBeInstanceOf(CredentialsUnavailableError);
    expect(pending).toHaveLength(1);
    expect((await provider.get(TENANT)).appSecret).toBe('one');
    // …a little left, a read that must answer within it.
    const refetch = provider.refetchAfterRefusal(TENANT, refused, { deadline: Date.now() + 30 });
    await expect(refetch).rejects.toThrow(/did not answer .* within the \d+ ms this invocation had left/);
    expect(pending).toHaveLength(2);
  });

  it('does not cache failures and maps SDK errors to CREDENTIALS_UNAVAILABLE', async () => {
    let calls = 0;
    const provider = createCredentialsProvider({
      client: {
        send: async () => {
          calls += 1;
          throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
        },
      } as never,
      cacheSeconds: 300,
    });
    const error = await provider.get(TENANT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialsUnavailableError);
    expect((error as Error).message).toContain("tenant 'acme' (secret 'koodrive/acme'): ThrottlingException");
    await provider.get(TENANT).catch(() => undefined);
    expect(calls).toBe(2);
  });

  it('names a failed DNS lookup (EAI_AGAIN) as a failed connection', async () => {
    const provider = createCredentialsProvider({
      client: {
        send: async () => {
          throw Object.assign(new Error('getaddrinfo EAI_AGAIN secretsmanager.eu-west-1.amazonaws.com'), {
            name: 'Error',
            code: 'EAI_AGAIN',
          });
        },
      } as never,
      cacheSeconds: 300,
    });
    await expect(provider.get(TENANT)).rejects.toThrow(
      "(secret 'koodrive/acme'): Error (EAI_AGAIN: the connection failed, not a slow answer)",
    );
  });

  /** A provider whose every read fails with the SDK's TimeoutError, as its retry strategy leaves it. */
  const timingOut = (fields: { code?: string; $metadata?: { attempts: number } }) =>
    createCredentialsProvider({
      client: {
        send: async () => {
          throw Object.assign(
            new Error('@smithy/node-http-handler - a request has exceeded the requestTimeout'),
            {
              name: 'TimeoutError',
              ...fields,
            },
          );
        },
      } as never,
      cacheSeconds: 300,
    });

  it('calls a TimeoutError with code ETIMEDOUT no answer within the time limit × tries, not a failed connection', async () => {
    // The SDK's requestTimeout on each of its tries: the call failed after about 15 s.
    const error = await timingOut({ code: 'ETIMEDOUT', $metadata: { attempts: 3 } })
      .get(TENANT)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialsUnavailableError);
    expect((error as Error).message).toBe(
      "Secrets Manager did not answer for tenant 'acme' (secret 'koodrive/acme') within the time limit of 5000 ms × 3 tries (TimeoutError); check the network path to Secrets Manager (from a VPC: an interface endpoint or a NAT) and the service health.",
    );
    expect((error as Error).message).not.toContain('connection failed');
  });

  it('counts the tries the SDK made, and names both limits when no connection was made in time', async () => {
    // Fewer tries than the SDK's default (its retry quota ran out): the count it recorded.
    const fewer = await timingOut({ code: 'ETIMEDOUT', $metadata: { attempts: 1 } })
      .get(TENANT)
      .catch((e: unknown) => e);
    expect((fewer as Error).message).toContain('within the time limit of 5000 ms × 1 try (TimeoutError)');
    // The SDK's connectionTimeout has no code; an error without a count gets the SDK's default.
    const unconnected = await timingOut({})
      .get(TENANT)
      .catch((e: unknown) => e);
    expect((unconnected as Error).message).toContain(
      'within the time limits (2000 ms to connect, 5000 ms to answer) × 3 tries (TimeoutError)',
    );
  });
});
