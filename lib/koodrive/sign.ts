/**
 * KooDrive's app-based authentication (see shared/koodrive/API.md), as separate pure steps in the
 * layout of smithy-typescript's signature-v4: canonical request → string to sign → signature →
 * Authorization header. The signing date is passed in, so tests need no fake timers. Where the
 * vendor's text is ambiguous, each reading lives in one named step, so that a difference found
 * against the live service is a one-line change.
 */
import { createHmac, hash } from 'node:crypto';

export const SIGNING_ALGORITHM = 'HMAC-SHA256';
/** SHA-256 of the empty string: the hashed payload of a request without a body. */
export const EMPTY_PAYLOAD_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** The headers every request signs, lower case and sorted, as every vendor example does. */
export const SIGNED_HEADER_NAMES: readonly string[] = Object.freeze(['host', 'x-date', 'x-user-id']);

const AUTHORIZATION_HEADER = 'Authorization';
const HOST_HEADER = 'Host';
const DATE_HEADER = 'X-Date';
const USER_ID_HEADER = 'X-User-Id';

const SIGNING_DATE_PATTERN = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const UNRESERVED_BYTE = /^[A-Za-z0-9\-_.~]$/;
const UNRESERVED_ONLY = /^[A-Za-z0-9\-_.~]*$/;
// A path of unreserved segments without dot segments is its own canonical form (plus a trailing '/').
const PLAIN_PATH = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9\-_.~]+)*\/?$/;
const PERCENT_TRIPLET = /^%[0-9A-Fa-f]{2}$/;
// HTTP's optional whitespace: space and horizontal tab.
const HEADER_EDGE_WHITESPACE = /^[ \t]+|[ \t]+$/g;
const HEADER_ANY_WHITESPACE = /[ \t]/;
const HEX_SIGNATURE = /^[0-9a-f]{64}$/;
// Header values that reach KooDrive as they were signed: visible ASCII (and inner spaces for the user
// id). Anything else either cannot be sent at all (Node refuses characters past U+00FF, such as a
// zero-width space pasted along with an id) or is sent as bytes the vendor may sign differently.
// An AppId also sits inside the Authorization header's comma-separated list: no space or comma.
const AUTHORIZATION_FIELD_VALUE = /^[\x21-\x2b\x2d-\x7e]+$/;
const HEADER_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

const pad = (value: number, width: number): string => String(value).padStart(width, '0');

/** The last signing date formatted, by its whole second: warm calls within one second share the text. */
let lastSigningSecond = Number.NaN;
let lastSigningDate = '';

/** `YYYYMMDDTHHMMSSZ` in UTC, e.g. `20240909T033325Z`; throws a RangeError for an invalid date or a year past 9999. */
export function formatSigningDate(date: Date): string {
  const time = date.getTime();
  if (Number.isNaN(time)) throw new RangeError('Cannot format an invalid Date as a signing date');
  const second = Math.floor(time / 1000);
  if (second === lastSigningSecond) return lastSigningDate;
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999)
    throw new RangeError(`Cannot format year ${year} as a four-digit signing date`);
  const text =
    `${pad(year, 4)}${pad(date.getUTCMonth() + 1, 2)}${pad(date.getUTCDate(), 2)}` +
    `T${pad(date.getUTCHours(), 2)}${pad(date.getUTCMinutes(), 2)}${pad(date.getUTCSeconds(), 2)}Z`;
  lastSigningSecond = second;
  lastSigningDate = text;
  return text;
}

/** Strict inverse of {@link formatSigningDate}: undefined for any other shape or an impossible date (Feb 30, 24:00, :60). */
export function parseSigningDate(value: string): Date | undefined {
  const match = SIGNING_DATE_PATTERN.exec(value);
  if (!match) return undefined;
  const [, year, month, day, hours, minutes, seconds] = match.map(Number);
  if (
    year === undefined ||
    month === undefined ||
    day === undefined ||
    hours === undefined ||
    minutes === undefined ||
    seconds === undefined
  ) {
    return undefined;
  }
  const date = new Date(0);
  // setUTCFullYear, unlike Date.UTC, does not map years 0–99 to 1900–1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hours, minutes, seconds, 0);
  // Date rolls impossible fields over (Feb 30 → Mar 1); a round trip that changes the text catches that.
  return formatSigningDate(date) === value ? date : undefined;
}

function encodeBytes(bytes: Uint8Array): string {
  let encoded = '';
  for (const byte of bytes) {
    const char = String.fromCharCode(byte);
    encoded += UNRESERVED_BYTE.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

/**
 * RFC 3986 encoding: `A–Z a–z 0–9 - _ . ~` kept, every other UTF-8 byte as `%XY` in upper-case hex
 * (so unlike encodeURIComponent, `!'()*` are encoded too). A lone surrogate is encoded as U+FFFD.
 */
export function percentEncode(value: string): string {
  // The common case (names, ids, numbers) has nothing to encode.
  if (UNRESERVED_ONLY.test(value)) return value;
  return encodeBytes(Buffer.from(value, 'utf8'));
}

// A segment's existing %XY triplets become the bytes they stand for, so that an already encoded path
// is not encoded twice; a '%' that starts no triplet is a literal '%'.
function decodeSegmentToBytes(segment: string): Uint8Array {
  const parts: Buffer[] = [];
  let literalStart = 0;
  for (let index = 0; index < segment.length; index++) {
    if (segment[index] === '%' && PERCENT_TRIPLET.test(segment.slice(index, index + 3))) {
      parts.push(Buffer.from(segment.slice(literalStart, index), 'utf8'));
      parts.push(Buffer.from([Number.parseInt(segment.slice(index + 1, index + 3), 16)]));
      index += 2;
      literalStart = index + 1;
    }
  }
  parts.push(Buffer.from(segment.slice(literalStart), 'utf8'));
  return Buffer.concat(parts);
}

/**
 * The canonical URI: dot segments removed (RFC 3986 §5.2.4), each segment percent-decoded then
 * percent-encoded, and a `/` appended when the path does not end with one (`/a/get` → `/a/get/`).
 */
export function getCanonicalUri(path: string): string {
  if (PLAIN_PATH.test(path)) return path.endsWith('/') ? path : `${path}/`;
  // Split before decoding, so an encoded '/' (%2F) stays inside its segment as the server sees it.
  const input = path.startsWith('/') ? path.slice(1) : path;
  const output: string[] = [];
  const segments = input === '' ? [] : input.split('/');
  segments.forEach((segment, index) => {
    const isLast = index === segments.length - 1;
    // '%2E' is '.' (RFC 3986 §2.3, §6.2.2): '%2E%2E' is a dot segment too, as a URL parser reads it.
    const dots = segment.replace(/%2e/gi, '.');
    if (dots === '.' || dots === '..') {
      if (dots === '..') output.pop();
      // "/a/b/.." names the directory "/a/", so a trailing dot segment leaves an empty last segment.
      if (isLast) output.push('');
      return;
    }
    output.push(encodeBytes(decodeSegmentToBytes(segment)));
  });
  const canonical = `/${output.join('/')}`;
  return canonical.endsWith('/') ? canonical : `${canonical}/`;
}

const UTF8 = new TextEncoder();

/** `query` with every character past U+007F as the %XY of its UTF-8 bytes (a lone surrogate as U+FFFD's). */
function asciiQuery(query: string): string {
  return query.replace(/[\u0080-\uffff]+/g, (run) => {
    let encoded = '';
    for (const byte of UTF8.encode(run)) encoded += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    return encoded;
  });
}

const compareCodeUnits = (left: string, right: string): number => (left < right ? -1 : left > right ? 1 : 0);

/**
 * The canonical query string: `name=value` pairs percent-encoded (the `=` stays for an empty value),
 * sorted by the decoded name, then value, in UTF-16 code-unit order, joined by `&`; `''` when none.
 * A string is parsed as a URL's query (a leading `?` is ignored, `+` is a space).
 */
export function getCanonicalQuery(query: string | URLSearchParams | undefined): string {
  if (query === undefined || query === '' || (typeof query !== 'string' && query.size === 0)) return '';
  // A string's characters past U+007F written as their UTF-8 bytes first: Node's URLSearchParams keeps
  // only the low byte of each such character when the same part also holds a '%' that starts no %XY.
  const params = typeof query === 'string' ? new URLSearchParams(asciiQuery(query)) : query;
  // Huawei's API-gateway SDKs sort the names before encoding them (SigV4 sorts the encoded names);
  // the two orders differ only for names outside A–Z a–z 0–9 - _ . ~.
  return [...params.entries()]
    .sort(([leftName, leftValue], [rightName, rightValue]) =>
      leftName === rightName
        ? compareCodeUnits(leftValue, rightValue)
        : compareCodeUnits(leftName, rightName),
    )
    .map(([name, value]) => `${percentEncode(name)}=${percentEncode(value)}`)
    .join('&');
}

function sortSignedHeaderNames(signedHeaderNames: readonly string[]): string[] {
  return [...new Set(signedHeaderNames.map((name) => name.toLowerCase()))].sort(compareCodeUnits);
}

const DEFAULT_SIGNED_HEADER_NAMES = Object.freeze(sortSignedHeaderNames(SIGNED_HEADER_NAMES));
const DEFAULT_SIGNED_HEADERS = DEFAULT_SIGNED_HEADER_NAMES.join(';');

/** Lower case, deduplicated, sorted; the default list is worked out once. */
function normalizeSignedHeaderNames(signedHeaderNames: readonly string[]): readonly string[] {
  return signedHeaderNames === SIGNED_HEADER_NAMES
    ? DEFAULT_SIGNED_HEADER_NAMES
    : sortSignedHeaderNames(signedHeaderNames);
}

/**
 * The canonical headers: `name:value\n` for each signed header, names lower case and sorted. Throws
 * when a signed header is missing, since the vendor would refuse the request anyway.
 */
export function getCanonicalHeaders(
  headers: Record<string, string>,
  signedHeaderNames: readonly string[] = SIGNED_HEADER_NAMES,
): string {
  const byLowerName = new Map<string, string>();
  for (const name in headers) byLowerName.set(name.toLowerCase(), headers[name] as string);
  let canonical = '';
  for (const name of normalizeSignedHeaderNames(signedHeaderNames)) {
    const value = byLowerName.get(name);
    if (value === undefined) throw new Error(`The signed header '${name}' is missing from the request`);
    canonical += canonicalHeaderLine(name, value);
  }
  return canonical;
}

/** One canonical header: `name:value\n`, the value trimmed of spaces and tabs at its ends. */
function canonicalHeaderLine(lowerName: string, value: string): string {
  // trim(value), as ../shared/koodrive/API.md reads the vendor's rule and Huawei's API gateway SDKs
  // sign: inner runs of spaces stay as they are (SigV4 would collapse them; a user id holding two
  // spaces in a row would then be signed other than the gateway checks it).
  const normalized = HEADER_ANY_WHITESPACE.test(value) ? value.replace(HEADER_EDGE_WHITESPACE, '') : value;
  return `${lowerName}:${normalized}\n`;
}

/** The signed headers part: lower-case names, sorted, joined by `;` (`host;x-date;x-user-id`). */
export function getSignedHeaders(signedHeaderNames: readonly string[] = SIGNED_HEADER_NAMES): string {
  if (signedHeaderNames === SIGNED_HEADER_NAMES) return DEFAULT_SIGNED_HEADERS;
  return normalizeSignedHeaderNames(signedHeaderNames).join(';');
}

const sha256Hex = (data: string | Uint8Array): string => hash('sha256', data, 'hex');

/** Lower-case hex SHA-256 of the body (a string as UTF-8); {@link EMPTY_PAYLOAD_HASH} without one. */
export function getPayloadHash(body?: string | Uint8Array): string {
  if (body === undefined || body.length === 0) return EMPTY_PAYLOAD_HASH;
  return sha256Hex(body);
}

export interface CanonicalRequestInput {
  method: string;
  /** The request's path as sent (without the query). */
  path: string;
  query?: string | URLSearchParams;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  signedHeaderNames?: readonly string[];
}

/** Six parts joined by `\n`: method, URI, query, headers (each ending in `\n`), signed headers, payload hash. */
export function buildCanonicalRequest(input: CanonicalRequestInput): string {
  const signedHeaderNames = input.signedHeaderNames ?? SIGNED_HEADER_NAMES;
  return [
    input.method.toUpperCase(),
    getCanonicalUri(input.path),
    getCanonicalQuery(input.query),
    getCanonicalHeaders(input.headers, signedHeaderNames),
    getSignedHeaders(signedHeaderNames),
    getPayloadHash(input.body),
  ].join('\n');
}

/** `HMAC-SHA256\n` + hex SHA-256 of the canonical request. The vendor's formula has no date line: `x-date` is signed instead. */
export function buildStringToSign(canonicalRequest: string): string {
  return `${SIGNING_ALGORITHM}\n${sha256Hex(canonicalRequest)}`;
}

/** Lower-case hex HMAC-SHA256 of the string to sign, keyed with the AppSecret's UTF-8 bytes. */
export function computeSignature(appSecret: string, stringToSign: string): string {
  return createHmac('sha256', appSecret).update(stringToSign).digest('hex');
}

/** `HMAC-SHA256 AppId=…,SignedHeaders=…,Signature=…`: one space after the algorithm, commas without spaces. */
export function formatAuthorization(appId: string, signedHeaders: string, signature: string): string {
  return `${SIGNING_ALGORITHM} AppId=${appId},SignedHeaders=${signedHeaders},Signature=${signature}`;
}

/**
 * Reads an app-auth Authorization header (as a verifier would); undefined unless it has the algorithm,
 * then AppId, SignedHeaders and a 64-digit lower-hex Signature exactly once each, in any order.
 */
export function parseAuthorization(
  value: string,
): { appId: string; signedHeaders: string[]; signature: string } | undefined {
  const prefix = `${SIGNING_ALGORITHM} `;
  if (!value.startsWith(prefix)) return undefined;
  const fields = new Map<string, string>();
  for (const part of value.slice(prefix.length).split(',')) {
    const separator = part.indexOf('=');
    if (separator <= 0) return undefined;
    const key = part.slice(0, separator).trim();
    if (fields.has(key)) return undefined;
    fields.set(key, part.slice(separator + 1).trim());
  }
  const appId = fields.get('AppId');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (fields.size !== 3 || !appId || !signedHeaders || signature === undefined) return undefined;
  if (!HEX_SIGNATURE.test(signature)) return undefined;
  const names = signedHeaders.split(';');
  if (names.some((name) => name === '')) return undefined;
  return { appId, signedHeaders: names, signature };
}

export interface SignRequestInput {
  method: string;
  url: string | URL;
  body?: string | Uint8Array;
  appId: string;
  appSecret: string;
  userId: string;
  signingDate: Date;
  /** Other headers the request carries. They are not signed; one that names a signing header with another value throws. */
  headers?: Record<string, string>;
}

export interface SignedRequest {
  /** The headers to send; `Host` is the URL's host, including a non-default port. */
  headers: { Authorization: string; Host: string; 'X-Date': string; 'X-User-Id': string };
  /** For debugging: neither contains the secret nor the signature. */
  canonicalRequest: string;
  stringToSign: string;
}

/** The AppId and user id that passed the checks last: a warm container signs with the same ones. */
let checkedAppId: string | undefined;
let checkedUserId: string | undefined;

/**
 * The canonical request's first lines (method, URI, query and the `host` line) for a URL and method,
 * by the steps above, kept per URL object while its href stays the same: the client signs every call
 * to one tenant's endpoint with the same URL.
 */
interface CanonicalHead {
  method: string;
  href: string;
  host: string;
  head: string;
}
const CANONICAL_HEADS = new WeakMap<URL, CanonicalHead>();

function canonicalHeadOf(url: URL, method: string): CanonicalHead {
  const kept = CANONICAL_HEADS.get(url);
  if (kept !== undefined && kept.method === method && kept.href === url.href) return kept;
  const host = url.host;
  const head = `${method.toUpperCase()}\n${getCanonicalUri(url.pathname)}\n${getCanonicalQuery(url.searchParams)}\n${canonicalHeaderLine('host', host)}`;
  const made = { method, href: url.href, host, head };
  CANONICAL_HEADS.set(url, made);
  return made;
}

/** Signs one request with the app's credentials; the caller sends the returned headers with it. */
export function signRequest(input: SignRequestInput): SignedRequest {
  // These would otherwise produce a request the vendor refuses with no hint why; values are not echoed.
  if (input.appSecret === '') throw new Error('Cannot sign a request: the AppSecret is empty');
  if (input.appId !== checkedAppId) {
    if (!AUTHORIZATION_FIELD_VALUE.test(input.appId)) {
      throw new Error(
        'Cannot sign a request: the AppId is empty or holds a character other than visible ASCII (a space, a comma, a control character, or an invisible one such as a zero-width space from a copy-paste)',
      );
    }
    checkedAppId = input.appId;
  }
  if (input.userId !== checkedUserId) {
    if (!HEADER_VALUE.test(input.userId)) {
      throw new Error(
        'Cannot sign a request: the user id is empty or holds a character other than visible ASCII and inner spaces (a control character, or an invisible one such as a zero-width space from a copy-paste)',
      );
    }
    checkedUserId = input.userId;
  }
  const { host, head } = canonicalHeadOf(
    typeof input.url === 'string' ? new URL(input.url) : input.url,
    input.method,
  );
  const signingHeaders = {
    [HOST_HEADER]: host,
    [DATE_HEADER]: formatSigningDate(input.signingDate),
    [USER_ID_HEADER]: input.userId,
  };
  if (input.headers !== undefined) checkOtherHeaders(input.headers, signingHeaders);
  // buildCanonicalRequest's six parts, the first ones (and the host line) worked out once per URL: the
  // other signed headers in their sorted order (host, x-date, x-user-id), then the signed-header list
  // and the payload hash.
  const canonicalRequest =
    `${head}${canonicalHeaderLine('x-date', signingHeaders[DATE_HEADER])}` +
    `${canonicalHeaderLine('x-user-id', signingHeaders[USER_ID_HEADER])}\n` +
    `${DEFAULT_SIGNED_HEADERS}\n${getPayloadHash(input.body)}`;
  const stringToSign = buildStringToSign(canonicalRequest);
  const signature = computeSignature(input.appSecret, stringToSign);
  return {
    headers: {
      Authorization: formatAuthorization(input.appId, getSignedHeaders(), signature),
      Host: signingHeaders[HOST_HEADER],
      'X-Date': signingHeaders[DATE_HEADER],
      'X-User-Id': signingHeaders[USER_ID_HEADER],
    },
    canonicalRequest,
    stringToSign,
  };
}

/** Throws for another header that is an Authorization header or names a signing header with another value. */
function checkOtherHeaders(headers: Record<string, string>, signingHeaders: Record<string, string>): void {
  const ownNames = new Map(
    Object.entries(signingHeaders).map(([name, value]) => [name.toLowerCase(), value]),
  );
  for (const [name, value] of Object.entries(headers)) {
    const lowerName = name.toLowerCase();
    if (lowerName === AUTHORIZATION_HEADER.toLowerCase()) {
      throw new Error('signRequest sets the Authorization header itself; do not pass one');
    }
    const own = ownNames.get(lowerName);
    // Header values are not secrets here (host, date, user id), so naming both is safe and useful.
    if (own !== undefined && own !== value) {
      throw new Error(`The header ${name}: ${value} disagrees with the signed value ${own}`);
    }
  }
}

const RULE = '-'.repeat(60);

/** Human-readable explanation of a signing (canonical request, string to sign, signed headers, AppId) that never contains the secret or the signature value. */
export function describeSigning(signed: SignedRequest): string {
  const authorization = parseAuthorization(signed.headers.Authorization);
  const canonicalHash = signed.stringToSign.split('\n')[1] ?? '(unknown)';
  return [
    `Algorithm:       ${SIGNING_ALGORITHM}`,
    `AppId:           ${authorization?.appId ?? '(unreadable Authorization header)'}`,
    `Signed headers:  ${authorization?.signedHeaders.join(';') ?? getSignedHeaders()}`,
    `Host:            ${signed.headers.Host}`,
    `X-Date:          ${signed.headers['X-Date']}`,
    `X-User-Id:       ${signed.headers['X-User-Id']}`,
    '',
    'Canonical request (between the rules; the empty line inside it is part of it):',
    RULE,
    signed.canonicalRequest,
    RULE,
    `SHA-256 of the canonical request: ${canonicalHash}`,
    '',
    'String to sign (between the rules):',
    RULE,
    signed.stringToSign,
    RULE,
    'Signature = lower-hex HMAC-SHA256(AppSecret, string to sign); neither is shown here.',
  ].join('\n');
}
