/**
 * Known-answer vectors for lib/koodrive/sign.ts, run one test each by sign.test.ts.
 *
 * How they were derived (independently of the TypeScript code):
 * - The first is the worked example of shared/koodrive/API.md, copied as published there.
 * - For the others, the canonical request was written out by hand from the rules in API.md, and its
 *   SHA-256, the body hash and the signature were computed with Python's standard library:
 *     python3 -c 'import hashlib,hmac; cr="GET\n/…"; h=hashlib.sha256(cr.encode()).hexdigest();
 *       print(h, hmac.new(SECRET.encode(), ("HMAC-SHA256\n"+h).encode(), hashlib.sha256).hexdigest())'
 *   The hand-written canonical query was also cross-checked with Python's
 *   `"&".join(quote(k, safe="~") + "=" + quote(v, safe="~") for k, v in sorted(pairs))`,
 *   which sorts the decoded names as Huawei's API-gateway SDKs do.
 * The secrets are dummies made up for these tests.
 */

const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const USER_ID = '1505084218764547200';
const DUMMY_SECRET = 'dummy-secret-NOT-FROM-DOCS';

/** A request given as a URL and signed with signRequest (so the URL parser runs first). */
interface UrlRequest {
  kind: 'url';
  method: string;
  url: string;
  userId: string;
  signingDate: string;
  body?: string;
}

/** A request given as its parts and canonicalized with buildCanonicalRequest (no URL parser involved). */
interface PartsRequest {
  kind: 'parts';
  method: string;
  path: string;
  query?: string;
  headers: Record<string, string>;
  body?: string;
  signedHeaderNames?: readonly string[];
}

export interface SigningVector {
  name: string;
  derivation: string;
  appId: string;
  appSecret: string;
  request: UrlRequest | PartsRequest;
  expected: {
    canonicalRequest: string;
    canonicalRequestHash: string;
    signature: string;
  };
}

const lines = (...parts: string[]): string => parts.join('\n');

/** Derived by hand and with Python (see the two vectors that use it): the path with dot segments and non-ASCII characters. */
const DOT_SEGMENT_PATH_EXPECTED = {
  canonicalRequest: lines(
    'GET',
    '/koodrive/ose/v1/a%20b/%C3%BC/get/',
    '',
    'host:intl.myhuaweicloud-koodrive.com:8443',
    'x-date:20240909T033325Z',
    `x-user-id:${USER_ID}`,
    '',
    'host;x-date;x-user-id',
    EMPTY,
  ),
  canonicalRequestHash: 'ee7269a6fc7f2fc9270b4040e7743701376d032971c05d1cf3e617e79479e461',
  signature: '73237ee9c39de8c33cf3c53d559123719b8d0a5beac04bc8cb75124dd2cf4b52',
};

export const SIGNING_VECTORS: readonly SigningVector[] = [
  {
    name: 'API.md worked example: GET allocation',
    derivation:
      'published in shared/koodrive/API.md ("Worked example"); hash and signature copied from there',
    appId: 'a378331eca141163119eb602adb67b7802cc79cd33ba44c7d2fe61d1586c96a1',
    appSecret: DUMMY_SECRET,
    request: {
      kind: 'url',
      method: 'GET',
      url: 'https://10.32.45.165/koodrive/ose/v1/space/allocation/get',
      userId: USER_ID,
      signingDate: '20240909T033325Z',
    },
    expected: {
      canonicalRequest: lines(
        'GET',
        '/koodrive/ose/v1/space/allocation/get/',
        '',
        'host:10.32.45.165',
        'x-date:20240909T033325Z',
        `x-user-id:${USER_ID}`,
        '',
        'host;x-date;x-user-id',
        EMPTY,
      ),
      canonicalRequestHash: 'c125ee2b112b34c099bec32c4309cf53711739d159be74b6c832d90114436940',
      signature: '248eaef85b86e7fdbdac027d9ac3fd367b07a0f27f9881e7e53dfbce35794fed',
    },
  },
  {
    name: 'query with reserved, unreserved, non-ASCII, empty and repeated parameters',
    derivation:
      "hand-written canonical query: decoded names sorted in code-unit order (a, a, b, c, d, e, empty, é; a repeated name sorted by value: w < x/y?), each name and value RFC 3986-encoded (space %20, / %2F, ? %3F, !'()* %21%27%28%29%2A, + from %2B stays %2B, é %C3%A9, ü %C3%BC, ~-._ kept), empty value keeps '='; cross-checked with Python's urllib quote(safe='~') over sorted pairs; hash and signature by Python hashlib/hmac",
    appId: 'app-query',
    appSecret: DUMMY_SECRET,
    request: {
      kind: 'url',
      method: 'GET',
      url: "https://intl.myhuaweicloud-koodrive.com/koodrive/ose/v1/space/userList?b=a b&a=x/y?&c=~-._&é=ü&empty=&d=!'()*&e=1%2B1&a=w",
      userId: USER_ID,
      signingDate: '20251128T040000Z',
    },
    expected: {
      canonicalRequest: lines(
        'GET',
        '/koodrive/ose/v1/space/userList/',
        'a=w&a=x%2Fy%3F&b=a%20b&c=~-._&d=%21%27%28%29%2A&e=1%2B1&empty=&%C3%A9=%C3%BC',
        'host:intl.myhuaweicloud-koodrive.com',
        'x-date:20251128T040000Z',
        `x-user-id:${USER_ID}`,
        '',
        'host;x-date;x-user-id',
        EMPTY,
      ),
      canonicalRequestHash: '7f1e39d80276edaf0555c7b549cddf534dd5a3f9f1de3fa8a1ded4841d3cb380',
      signature: '12c95929ac89160283cc6fff91e09af9b995f715889e336ca01181033cf9e2bd',
    },
  },
  {
    name: 'header values with surrounding and inner whitespace, mixed-case names, an unsigned header',
    derivation:
      "hand-written canonical headers: names lower-cased and sorted (host, x-date, x-note, x-user-id), values trimmed of spaces and tabs and nothing else (API.md's trim(value): the inner run in x-note stays), Content-Type left out because it is not signed; hash and signature by Python hashlib/hmac",
    appId: 'app-headers',
    appSecret: DUMMY_SECRET,
    request: {
      kind: 'parts',
      method: 'get',
      path: '/koodrive/ose/v1/space/allocation/get',
      headers: {
        HOST: '  koodrive.example.com  ',
        'x-DATE': '\t20240909T033325Z ',
        'X-User-Id': ` ${USER_ID}\t`,
        'X-Note': '  a   b \t c ',
        'Content-Type': 'application/json',
      },
      signedHeaderNames: ['x-user-id', 'X-Note', 'host', 'x-date'],
    },
    expected: {
      canonicalRequest: lines(
        'GET',
        '/koodrive/ose/v1/space/allocation/get/',
        '',
        'host:koodrive.example.com',
        'x-date:20240909T033325Z',
        'x-note:a   b \t c',
        `x-user-id:${USER_ID}`,
        '',
        'host;x-date;x-note;x-user-id',
        EMPTY,
      ),
      canonicalRequestHash: '46fda2ca138748fe6fa2c09f5c81028a00b6770012e77dc436dc8976c9696010',
      signature: '5aa5ea328bcc06eadb7877a88b81f7e6e4c9fe5ca45b055a5a3b2542c1af8153',
    },
  },
  {
    name: 'path with dot segments, a space and a non-ASCII segment (raw path)',
    derivation:
      "hand-written canonical URI: RFC 3986 dot-segment removal (/koodrive/./ose/../ose → /koodrive/ose), space → %20, ü → %C3%BC, trailing '/' appended; the Host keeps its non-default port; hash and signature by Python hashlib/hmac",
    appId: 'app-path',
    appSecret: DUMMY_SECRET,
    request: {
      kind: 'parts',
      method: 'GET',
      path: '/koodrive/./ose/../ose/v1/a b/ü/get',
      headers: {
        Host: 'intl.myhuaweicloud-koodrive.com:8443',
        'X-Date': '20240909T033325Z',
        'X-User-Id': USER_ID,
      },
    },
    expected: DOT_SEGMENT_PATH_EXPECTED,
  },
  {
    name: 'the same path given as a URL (the URL parser encodes it first; no double encoding)',
    derivation:
      'the previous vector\'s canonical request, hash and signature: new URL() turns the path into /koodrive/ose/v1/a%20b/%C3%BC/get, whose %XY the signer decodes before encoding, and url.host keeps ":8443"',
    appId: 'app-path',
    appSecret: DUMMY_SECRET,
    request: {
      kind: 'url',
      method: 'GET',
      url: 'https://intl.myhuaweicloud-koodrive.com:8443/koodrive/./ose/../ose/v1/a b/ü/get',
      userId: USER_ID,
      signingDate: '20240909T033325Z',
    },
    expected: DOT_SEGMENT_PATH_EXPECTED,
  },
  {
    name: 'POST with a JSON body (non-ASCII), lower-case method and a non-ASCII secret',
    derivation:
      'body hash = Python hashlib.sha256(body.encode("utf-8")) = cdcae3bf…779ed2; canonical query limit=100&offset=0 (sorted); secret keyed as its UTF-8 bytes; hash and signature by Python hashlib/hmac',
    appId: 'app-post',
    appSecret: 's3cr3t-ÄppSecret',
    request: {
      kind: 'url',
      method: 'post',
      url: 'https://cn.myhuaweicloud-koodrive.com/koodrive/ose/v1/space/userList?offset=0&limit=100',
      userId: USER_ID,
      signingDate: '20251128T040000Z',
      body: '{"userIds":["u1","ü"],"limit":100}',
    },
    expected: {
      canonicalRequest: lines(
        'POST',
        '/koodrive/ose/v1/space/userList/',
        'limit=100&offset=0',
        'host:cn.myhuaweicloud-koodrive.com',
        'x-date:20251128T040000Z',
        `x-user-id:${USER_ID}`,
        '',
        'host;x-date;x-user-id',
        'cdcae3bfdbeef4ebe084a297d3173cd6c5a3af5489e831b54a4f19c9d8779ed2',
      ),
      canonicalRequestHash: '8a7002817ce4611f952ba181f95e290215722adf36f9c35bafc6ffe93ad6e547',
      signature: 'c74db555f7f708d4f95ef87c22f4c4b1f1dd9b73c38334a7a6fd8f529a29db4a',
    },
  },
];
