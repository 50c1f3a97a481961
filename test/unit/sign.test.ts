import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  buildCanonicalRequest,
  buildStringToSign,
  computeSignature,
  describeSigning,
  EMPTY_PAYLOAD_HASH,
  formatAuthorization,
  formatSigningDate,
  getCanonicalHeaders,
  getCanonicalQuery,
  getCanonicalUri,
  getPayloadHash,
  getSignedHeaders,
  parseAuthorization,
  parseSigningDate,
  percentEncode,
  SIGNED_HEADER_NAMES,
  SIGNING_ALGORITHM,
  signRequest,
} from '../../lib/koodrive/sign.ts';
import { runSignDebug } from '../../scripts/sign-debug.ts';
import { SIGNING_VECTORS, type SigningVector } from './sign.vectors.ts';

function dateOf(text: string): Date {
  const date = parseSigningDate(text);
  if (date === undefined) throw new Error(`bad test date ${text}`);
  return date;
}

function canonicalRequestOf(vector: SigningVector): string {
  const request = vector.request;
  if (request.kind === 'parts') {
    return buildCanonicalRequest({
      method: request.method,
      path: request.path,
      headers: request.headers,
      ...(request.query === undefined ? {} : { query: request.query }),
      ...(request.body === undefined ? {} : { body: request.body }),
      ...(request.signedHeaderNames === undefined ? {} : { signedHeaderNames: request.signedHeaderNames }),
    });
  }
  return signRequest({
    method: request.method,
    url: request.url,
    appId: vector.appId,
    appSecret: vector.appSecret,
    userId: request.userId,
    signingDate: dateOf(request.signingDate),
    ...(request.body === undefined ? {} : { body: request.body }),
  }).canonicalRequest;
}

describe('known-answer vectors', () => {
  it.each(SIGNING_VECTORS.map((vector) => [vector.name, vector] as const))('%s', (_name, vector) => {
    const canonicalRequest = canonicalRequestOf(vector);
    expect(canonicalRequest).toBe(vector.expected.canonicalRequest);
    const stringToSign = buildStringToSign(canonicalRequest);
    expect(stringToSign).toBe(`HMAC-SHA256\n${vector.expected.canonicalRequestHash}`);
    expect(computeSignature(vector.appSecret, stringToSign)).toBe(vector.expected.signature);

    const request = vector.request;
    if (request.kind === 'url') {
      const signed = signRequest({
        method: request.method,
        url: new URL(request.url),
        appId: vector.appId,
        appSecret: vector.appSecret,
        userId: request.userId,
        signingDate: dateOf(request.signingDate),
        ...(request.body === undefined ? {} : { body: request.body }),
      });
      expect(signed.stringToSign).toBe(stringToSign);
      expect(signed.headers).toEqual({
        Authorization: `HMAC-SHA256 AppId=${vector.appId},SignedHeaders=host;x-date;x-user-id,Signature=${vector.expected.signature}`,
        Host: new URL(request.url).host,
        'X-Date': request.signingDate,
        'X-User-Id': request.userId,
      });
    }
  });
});

describe('signing dates', () => {
  it('formats UTC with zero padding', () => {
    expect(formatSigningDate(new Date('2024-09-09T03:33:25.999Z'))).toBe('20240909T033325Z');
    expect(formatSigningDate(new Date('0099-01-02T03:04:05Z'))).toBe('00990102T030405Z');
  });

  it('refuses an invalid Date and five-digit years', () => {
    expect(() => formatSigningDate(new Date('nope'))).toThrow(RangeError);
    expect(() => formatSigningDate(new Date('+010000-01-01T00:00:00Z'))).toThrow(RangeError);
  });

  it('parses the strict form back to the same instant', () => {
    expect(parseSigningDate('20240909T033325Z')?.toISOString()).toBe('2024-09-09T03:33:25.000Z');
    expect(parseSigningDate('20240229T235959Z')?.toISOString()).toBe('2024-02-29T23:59:59.000Z');
    expect(parseSigningDate('00500101T000000Z')?.toISOString()).toBe('0050-01-01T00:00:00.000Z');
  });

  it.each([
    '',
    '20240909T033325',
    '20240909t033325Z',
    '2024-09-09T03:33:25Z',
    '20240909T033325.000Z',
    ' 20240909T033325Z',
    '20240230T000000Z',
    '20230229T000000Z',
    '20241301T000000Z',
    '20240001T000000Z',
    '20240900T000000Z',
    '20240909T240000Z',
    '20240909T036000Z',
    '20240909T033360Z',
    '２０240909T033325Z',
  ])('rejects %j', (value) => {
    expect(parseSigningDate(value)).toBeUndefined();
  });
});

describe('percentEncode', () => {
  it.each([
    ['AZaz09-_.~', 'AZaz09-_.~'],
    ["!'()*", '%21%27%28%29%2A'],
    [' ', '%20'],
    ['+', '%2B'],
    ['/?#[]@:$&=;,', '%2F%3F%23%5B%5D%40%3A%24%26%3D%3B%2C'],
    ['%', '%25'],
    ['é', '%C3%A9'],
    ['€', '%E2%82%AC'],
    ['😀', '%F0%9F%98%80'],
    ['\ud800', '%EF%BF%BD'],
    ['', ''],
  ])('encodes %j as %j', (input, expected) => {
    expect(percentEncode(input)).toBe(expected);
  });
});

describe('getCanonicalUri', () => {
  it.each([
    ['/koodrive/ose/v1/space/allocation/get', '/koodrive/ose/v1/space/allocation/get/'],
    ['/koodrive/ose/v1/space/allocation/get/', '/koodrive/ose/v1/space/allocation/get/'],
    ['', '/'],
    ['/', '/'],
    ['/a/./b/../c', '/a/c/'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/../../a', '/a/'],
    ['/a//b', '/a//b/'],
    ['/a b/ü', '/a%20b/%C3%BC/'],
    ['/a%20b/%c3%bc', '/a%20b/%C3%BC/'],
    ['/a%2Fb', '/a%2Fb/'],
    ['/100%/x%zz', '/100%25/x%25zz/'],
    ["/it's(1)*!", '/it%27s%281%29%2A%21/'],
    ['/~user-_.', '/~user-_./'],
    // Segments that only look like dot segments are plain names.
    ['/.hidden/..x/.../x.', '/.hidden/..x/.../x./'],
    ['/a/..', '/'],
    ['/a/.', '/a/'],
    ['/./a', '/a/'],
  ])('%j → %j', (path, expected) => {
    expect(getCanonicalUri(path)).toBe(expected);
  });
});

describe('getCanonicalQuery', () => {
  it('is empty without a query', () => {
    expect(getCanonicalQuery(undefined)).toBe('');
    expect(getCanonicalQuery('')).toBe('');
    expect(getCanonicalQuery('?')).toBe('');
    expect(getCanonicalQuery(new URLSearchParams())).toBe('');
  });

  it('encodes and sorts the brief example the same from a string or URLSearchParams', () => {
    const raw = 'b=a b&a=x/y?&c=~-._&é=ü&empty=';
    const expected = 'a=x%2Fy%3F&b=a%20b&c=~-._&empty=&%C3%A9=%C3%BC';
    expect(getCanonicalQuery(raw)).toBe(expected);
    expect(getCanonicalQuery(`?${raw}`)).toBe(expected);
    expect(getCanonicalQuery(new URLSearchParams(raw))).toBe(expected);
  });

  it('keeps "=" for a name without a value and sorts repeated names by value', () => {
    expect(getCanonicalQuery('flag&z=2&z=1&z=10')).toBe('flag=&z=1&z=10&z=2');
  });

  it('reads "+" as a space and %2B as a plus, as a URL query does', () => {
    expect(getCanonicalQuery('q=a+b&p=a%2Bb')).toBe('p=a%2Bb&q=a%20b');
  });

  it('sorts decoded names by code unit, so "Z" precedes "a" and "é" follows "z"', () => {
    expect(getCanonicalQuery('é=1&z=2&a=3&Z=4')).toBe('Z=4&a=3&z=2&%C3%A9=1');
  });
});

describe('getCanonicalHeaders and getSignedHeaders', () => {
  const headers = { 'X-User-Id': '42', host: 'h.example', 'X-DATE': '20240909T033325Z', Accept: '*/*' };

  it('lists only the signed headers, lower case, sorted, each ending in a newline', () => {
    expect(getCanonicalHeaders(headers)).toBe('host:h.example\nx-date:20240909T033325Z\nx-user-id:42\n');
  });

  it('trims values of spaces and tabs, and leaves inner runs as they are (API.md: trim(value))', () => {
    expect(getCanonicalHeaders({ 'X-A': ' \t a \t\t b  c \t' }, ['x-a'])).toBe('x-a:a \t\t b  c\n');
  });

  it('throws naming a missing signed header', () => {
    expect(() => getCanonicalHeaders({ host: 'h' })).toThrow(/'x-date' is missing/);
  });

  it('gives the signed-headers line from the same names', () => {
    expect(SIGNED_HEADER_NAMES).toEqual(['host', 'x-date', 'x-user-id']);
    expect(getSignedHeaders()).toBe('host;x-date;x-user-id');
    expect(getSignedHeaders(['X-User-Id', 'host', 'x-date', 'HOST'])).toBe('host;x-date;x-user-id');
  });
});

describe('getPayloadHash', () => {
  it('hashes the empty body to the constant', () => {
    expect(EMPTY_PAYLOAD_HASH).toBe(createHash('sha256').update('').digest('hex'));
    expect(getPayloadHash()).toBe(EMPTY_PAYLOAD_HASH);
    expect(getPayloadHash('')).toBe(EMPTY_PAYLOAD_HASH);
    expect(getPayloadHash(new Uint8Array())).toBe(EMPTY_PAYLOAD_HASH);
  });

  it('hashes a string as UTF-8 and bytes as they are', () => {
    // sha256("abc"), FIPS 180-2 appendix B.1.
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(getPayloadHash('abc')).toBe(abc);
    expect(getPayloadHash(new Uint8Array([0x61, 0x62, 0x63]))).toBe(abc);
    expect(getPayloadHash('é')).toBe(getPayloadHash(new Uint8Array([0xc3, 0xa9])));
  });
});

describe('string to sign and signature', () => {
  it('prefixes the algorithm to the hex hash of the canonical request', () => {
    expect(SIGNING_ALGORITHM).toBe('HMAC-SHA256');
    expect(buildStringToSign('')).toBe(`HMAC-SHA256\n${EMPTY_PAYLOAD_HASH}`);
  });

  it('computes HMAC-SHA256 (RFC 4231 test case 2)', () => {
    expect(computeSignature('Jefe', 'what do ya want for nothing?')).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });
});

describe('Authorization header', () => {
  const signature = 'a'.repeat(64);

  it('formats with one space after the algorithm and commas without spaces', () => {
    expect(formatAuthorization('app', 'host;x-date;x-user-id', signature)).toBe(
      `HMAC-SHA256 AppId=app,SignedHeaders=host;x-date;x-user-id,Signature=${signature}`,
    );
  });

  it('parses what it formats, and the fields in another order', () => {
    const expected = { appId: 'app', signedHeaders: ['host', 'x-date', 'x-user-id'], signature };
    expect(parseAuthorization(formatAuthorization('app', 'host;x-date;x-user-id', signature))).toEqual(
      expected,
    );
    expect(
      parseAuthorization(
        `HMAC-SHA256 Signature=${signature}, AppId=app, SignedHeaders=host;x-date;x-user-id`,
      ),
    ).toEqual(expected);
  });

  it.each([
    ['another scheme', `Bearer AppId=app,SignedHeaders=host,Signature=${signature}`],
    ['no space after the algorithm', `HMAC-SHA256AppId=app,SignedHeaders=host,Signature=${signature}`],
    ['a missing field', `HMAC-SHA256 AppId=app,Signature=${signature}`],
    ['a repeated field', `HMAC-SHA256 AppId=a,AppId=b,SignedHeaders=host,Signature=${signature}`],
    ['an unknown field', `HMAC-SHA256 AppId=a,SignedHeaders=host,Signature=${signature},X=1`],
    ['an empty AppId', `HMAC-SHA256 AppId=,SignedHeaders=host,Signature=${signature}`],
    ['an empty signed header', `HMAC-SHA256 AppId=a,SignedHeaders=host;;x-date,Signature=${signature}`],
    ['a short signature', 'HMAC-SHA256 AppId=a,SignedHeaders=host,Signature=abc'],
    ['an upper-case signature', `HMAC-SHA256 AppId=a,SignedHeaders=host,Signature=${'A'.repeat(64)}`],
    ['a field without "="', `HMAC-SHA256 AppId=a,SignedHeaders=host,Signature=${signature},junk`],
  ])('rejects %s', (_label, value) => {
    expect(parseAuthorization(value)).toBeUndefined();
  });
});

describe('signRequest', () => {
  const base = {
    method: 'GET',
    url: 'http://127.0.0.1:8080/koodrive/ose/v1/space/allocation/get',
    appId: 'app',
    appSecret: 'the-secret-value',
    userId: 'user-1',
    signingDate: new Date('2024-09-09T03:33:25Z'),
  };

  it('signs the host with its port and agrees with the separate steps', () => {
    const signed = signRequest(base);
    expect(signed.headers.Host).toBe('127.0.0.1:8080');
    const canonicalRequest = buildCanonicalRequest({
      method: 'GET',
      path: '/koodrive/ose/v1/space/allocation/get',
      headers: { host: '127.0.0.1:8080', 'x-date': '20240909T033325Z', 'x-user-id': 'user-1' },
    });
    expect(signed.canonicalRequest).toBe(canonicalRequest);
    const signature = computeSignature('the-secret-value', buildStringToSign(canonicalRequest));
    expect(parseAuthorization(signed.headers.Authorization)?.signature).toBe(signature);
  });

  it('signs a reused URL object as the separate steps do, also after the URL changed, and each date anew', () => {
    const url = new URL(base.url);
    const stepsFor = (target: URL, date: string, userId: string, method = 'GET') =>
      buildCanonicalRequest({
        method,
        path: target.pathname,
        query: target.searchParams,
        headers: { host: target.host, 'x-date': date, 'x-user-id': userId },
      });
    const first = signRequest({ ...base, url });
    expect(first.canonicalRequest).toBe(stepsFor(url, '20240909T033325Z', 'user-1'));
    // The same URL a second later, another user, another method: only what changed differs.
    const later = signRequest({
      ...base,
      url,
      userId: 'user 2',
      signingDate: new Date('2024-09-09T03:33:26.5Z'),
    });
    expect(later.canonicalRequest).toBe(stepsFor(url, '20240909T033326Z', 'user 2'));
    expect(signRequest({ ...base, url, method: 'post' }).canonicalRequest).toBe(
      stepsFor(url, '20240909T033325Z', 'user-1', 'POST'),
    );
    // A URL object changed in place (another host, path and query) is worked out again.
    url.host = 'example.com:9443';
    url.pathname = '/prefix/a b/get';
    url.search = '?b=2&a=1';
    expect(signRequest({ ...base, url }).canonicalRequest).toBe(stepsFor(url, '20240909T033325Z', 'user-1'));
    expect(signRequest({ ...base, url }).headers.Host).toBe('example.com:9443');
    // A refused value is refused on every call, also after a valid one was accepted.
    expect(() => signRequest({ ...base, url, userId: ' x' })).toThrow(/user id/);
    expect(() => signRequest({ ...base, url, userId: ' x' })).toThrow(/user id/);
  });

  it('changes the signature when the date, the user, the body or the secret changes', () => {
    const signatureOf = (changes: Partial<typeof base> & { body?: string }) =>
      parseAuthorization(signRequest({ ...base, ...changes }).headers.Authorization)?.signature;
    const original = signatureOf({});
    expect(original).toMatch(/^[0-9a-f]{64}$/);
    for (const changed of [
      signatureOf({ signingDate: new Date('2024-09-09T03:33:26Z') }),
      signatureOf({ userId: 'user-2' }),
      signatureOf({ body: '{}' }),
      signatureOf({ appSecret: 'another-secret' }),
      signatureOf({ url: 'http://127.0.0.1:8081/koodrive/ose/v1/space/allocation/get' }),
    ]) {
      expect(changed).not.toBe(original);
    }
  });

  it('accepts other headers that agree, and refuses ones that disagree or an Authorization', () => {
    expect(() =>
      signRequest({ ...base, headers: { host: '127.0.0.1:8080', Accept: 'application/json' } }),
    ).not.toThrow();
    expect(() => signRequest({ ...base, headers: { 'x-user-id': 'someone-else' } })).toThrow(/disagrees/);
    expect(() => signRequest({ ...base, headers: { authorization: 'Bearer x' } })).toThrow(/Authorization/);
  });

  it('refuses empty or unusable credentials without echoing them', () => {
    expect(() => signRequest({ ...base, appSecret: '' })).toThrow(/AppSecret is empty/);
    expect(() => signRequest({ ...base, appId: 'a,b' })).toThrow(/AppId/);
    expect(() => signRequest({ ...base, userId: 'x\r\ny' })).toThrow(/user id/);
  });

  it('keeps the secret and the signature out of the debugging fields and the description', () => {
    const signed = signRequest(base);
    const signature = parseAuthorization(signed.headers.Authorization)?.signature ?? 'missing';
    const description = describeSigning(signed);
    for (const text of [signed.canonicalRequest, signed.stringToSign, description]) {
      expect(text).not.toContain('the-secret-value');
      expect(text).not.toContain(signature);
    }
    expect(description).toContain(signed.canonicalRequest);
    expect(description).toContain(signed.stringToSign);
    expect(description).toContain('AppId:           app');
    expect(description).toContain('host;x-date;x-user-id');
  });
});

describe('scripts/sign-debug.ts', () => {
  const secret = 'debug-secret-value';
  const argv = [
    '--url',
    'https://10.32.45.165/koodrive/ose/v1/space/allocation/get',
    '--app-id',
    'a378331e',
    '--user-id',
    '1505084218764547200',
    '--date',
    '20240909T033325Z',
  ];

  it('prints the canonical request and string to sign but neither the secret nor the signature', async () => {
    const result = await runSignDebug({
      argv,
      env: { KOODRIVE_APP_SECRET: secret },
      readStdin: async () => '',
    });
    const signed = signRequest({
      method: 'GET',
      url: 'https://10.32.45.165/koodrive/ose/v1/space/allocation/get',
      appId: 'a378331e',
      appSecret: secret,
      userId: '1505084218764547200',
      signingDate: dateOf('20240909T033325Z'),
    });
    const signature = parseAuthorization(signed.headers.Authorization)?.signature ?? 'missing';
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(signed.canonicalRequest);
    expect(result.stdout).toContain(signed.stringToSign);
    expect(result.stdout).toContain('Signature=<redacted>');
    expect(result.stdout).toContain('X-Date: 20240909T033325Z');
    expect(result.stdout + result.stderr).not.toContain(secret);
    expect(result.stdout + result.stderr).not.toContain(signature);
    // Only its first 8 hex digits, to compare with another client's signature of the same request.
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    expect(result.stdout).toContain(`Signature begins: ${signature.slice(0, 8)}… (8 of its 64 hex digits`);
    expect(result.stdout).not.toContain(signature.slice(0, 9));
  });

  it('reads the secret from stdin when the variable is not set', async () => {
    const fromEnv = await runSignDebug({
      argv,
      env: { KOODRIVE_APP_SECRET: secret },
      readStdin: async () => '',
    });
    const fromStdin = await runSignDebug({ argv, env: {}, readStdin: async () => `${secret}\n` });
    expect(fromStdin.exitCode).toBe(0);
    expect(fromStdin.stdout).toBe(fromEnv.stdout);
    expect(fromStdin.stdout).not.toContain(secret);
  });

  it('refuses a secret on the command line without echoing it', async () => {
    const result = await runSignDebug({
      argv: [...argv, '--app-secret', secret],
      env: {},
      readStdin: async () => '',
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/KOODRIVE_APP_SECRET/);
    expect(result.stdout + result.stderr).not.toContain(secret);
  });

  it('refuses a stray word, which may be the secret, without echoing it', async () => {
    const result = await runSignDebug({ argv: [...argv, secret], env: {}, readStdin: async () => '' });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/every value needs its option.*KOODRIVE_APP_SECRET or stdin/);
    expect(result.stdout + result.stderr).not.toContain(secret);
  });

  it('does not mistake "secret" in a URL for a secret option', async () => {
    const result = await runSignDebug({
      argv: ['--url', 'https://h/secret/path?secret=1', '--app-id', 'a', '--user-id', 'u'],
      env: { KOODRIVE_APP_SECRET: secret },
      now: () => new Date('2024-09-09T03:33:25Z'),
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('/secret/path/\nsecret=1\n');
    expect(result.stdout).toContain('X-Date: 20240909T033325Z');
  });

  it('reports missing options and a bad date', async () => {
    const missing = await runSignDebug({ argv: ['--url', 'https://h/p'], env: { KOODRIVE_APP_SECRET: 's' } });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/--app-id/);
    const badDate = await runSignDebug({
      argv: [...argv.slice(0, 6), '--date', '2024-09-09'],
      env: { KOODRIVE_APP_SECRET: 's' },
    });
    expect(badDate.exitCode).toBe(2);
    expect(badDate.stderr).toMatch(/YYYYMMDDTHHMMSSZ/);
  });

  it('fails when no secret is given at all', async () => {
    const result = await runSignDebug({ argv, env: {}, readStdin: async () => '' });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/no AppSecret/);
  });
});
