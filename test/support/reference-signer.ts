/**
 * A reference for KooDrive's app-based authentication (HMAC-SHA256), written from
 * /work/shared/koodrive/API.md ("App-based authentication") and the vendor's page
 * seed-GetSpaceAllocation.txt alone, before lib/koodrive/sign.ts was read. It shares nothing with
 * lib/ and is meant to be plain rather than fast: byte arrays, explicit loops, one function per step
 * of the rule, so that a differential test can compare the production signer with it step by step.
 *
 * Input is the request as it goes on the wire: the method, the request target (path and optional
 * `?query`, as sent, i.e. possibly already percent-encoded), the header lines (any case, any
 * surrounding spaces), the body, and the app's id and secret. X-Date, X-User-Id and Host are read
 * from the headers given; nothing is stamped here.
 *
 * Readings where API.md's words leave a choice (each one is checked against the project's signer by
 * test/unit/sign.differential.property.test.ts):
 *  - the path "as sent" is split at literal `/`; each segment's `%XY` triplets are decoded to bytes
 *    (a `%` not followed by two hex digits stays a literal `%`), other characters give their UTF-8
 *    bytes; the bytes are then encoded again (unreserved bytes as they are, every other byte `%XY`,
 *    upper-case hex). So an encoded and an unencoded spelling of a segment canonicalize alike, and an
 *    encoded `/` (`%2F`) stays inside its segment.
 *  - dot segments are segments whose decoded bytes are exactly `.` or `..` (RFC 3986 §6.2.2: decode
 *    unreserved characters, then remove dot segments by §5.2.4, which runs here as the RFC writes it).
 *  - the query is split at `&`, each part at its first `=`; empty parts (`a=1&&b=2`) are dropped. How
 *    names and values are decoded and how the pairs are ordered is a {@link QueryReading}: the
 *    literal one (`+` a plus, bytes kept, pairs sorted by encoded name, equal names in the order sent)
 *    or the one the project documents (a URL's query: `+` a space, bytes that are not UTF-8 replaced
 *    by U+FFFD, pairs sorted by decoded name then value). API.md does not decide between them.
 *  - trim() removes spaces and horizontal tabs at both ends (HTTP's optional whitespace); inner
 *    spaces stay as they are.
 */
import { createHash, createHmac } from 'node:crypto';

const REFERENCE_ALGORITHM = 'HMAC-SHA256';
/** API.md: "the project signs host, x-date, x-user-id, as every vendor example does". */
const REFERENCE_SIGNED_HEADER_NAMES: readonly string[] = ['host', 'x-date', 'x-user-id'];

export interface ReferenceRequest {
  method: string;
  /** Path and optional query, as sent: `/koodrive/ose/v1/space/allocation/get?x=1`. */
  target: string;
  /** Header lines in any case; values as given (the reference trims them). */
  headers: ReadonlyArray<readonly [string, string]>;
  /** Absent or empty for no body; a string is taken as UTF-8. */
  body?: string | Uint8Array;
  appId: string;
  appSecret: string;
}

export interface ReferenceSignature {
  canonicalUri: string;
  canonicalQueryString: string;
  canonicalHeaders: string;
  signedHeaders: string;
  hashedPayload: string;
  canonicalRequest: string;
  stringToSign: string;
  signature: string;
  /** The value of the Authorization header (without the `Authorization: ` prefix). */
  authorization: string;
}

// ---------------------------------------------------------------------------------------------------
// Bytes and percent-encoding

function isHexDigit(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66);
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  return code - 0x61 + 10;
}

/** The UTF-8 bytes of one string (lone surrogates become U+FFFD, as TextEncoder does). */
function utf8Bytes(text: string): number[] {
  return Array.from(new TextEncoder().encode(text));
}

/**
 * Bytes a piece of a URL stands for: each `%XY` with two hex digits is the byte XY; every other
 * character (including a `%` that does not start such a triplet) is its UTF-8 bytes.
 */
function decodeToBytes(text: string): number[] {
  const bytes: number[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (
      c === 0x25 &&
      i + 2 < text.length &&
      isHexDigit(text.charCodeAt(i + 1)) &&
      isHexDigit(text.charCodeAt(i + 2))
    ) {
      bytes.push(hexValue(text.charCodeAt(i + 1)) * 16 + hexValue(text.charCodeAt(i + 2)));
      i += 3;
      continue;
    }
    // One whole code point (a surrogate pair counts as one).
    const codePoint = text.codePointAt(i) ?? c;
    const character = String.fromCodePoint(codePoint);
    for (const b of utf8Bytes(character)) bytes.push(b);
    i += character.length;
  }
  return bytes;
}

/** API.md: unreserved characters `A–Z a–z 0–9 - _ . ~` are left as they are. */
function isUnreservedByte(b: number): boolean {
  if (b >= 0x41 && b <= 0x5a) return true; // A-Z
  if (b >= 0x61 && b <= 0x7a) return true; // a-z
  if (b >= 0x30 && b <= 0x39) return true; // 0-9
  return b === 0x2d || b === 0x5f || b === 0x2e || b === 0x7e; // - _ . ~
}

const UPPER_HEX = '0123456789ABCDEF';

/** API.md: "everything else `%XY` with upper-case hex of the UTF-8 bytes, so a space is `%20`". */
function encodeBytes(bytes: readonly number[]): string {
  let out = '';
  for (const b of bytes) {
    if (isUnreservedByte(b)) {
      out += String.fromCharCode(b);
    } else {
      out += `%${UPPER_HEX.charAt(b >> 4)}${UPPER_HEX.charAt(b & 0x0f)}`;
    }
  }
  return out;
}

function bytesEqualAscii(bytes: readonly number[], ascii: string): boolean {
  if (bytes.length !== ascii.length) return false;
  for (let i = 0; i < ascii.length; i++) {
    if (bytes[i] !== ascii.charCodeAt(i)) return false;
  }
  return true;
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---------------------------------------------------------------------------------------------------
// The six parts of the canonical request

/** Part 1: "the HTTP method in upper case". */
function referenceMethod(method: string): string {
  return method.toUpperCase();
}

function splitTarget(target: string): { path: string; query: string } {
  // A fragment is never sent; drop one if given.
  const hash = target.indexOf('#');
  const withoutFragment = hash === -1 ? target : target.slice(0, hash);
  const question = withoutFragment.indexOf('?');
  if (question === -1) return { path: withoutFragment, query: '' };
  return { path: withoutFragment.slice(0, question), query: withoutFragment.slice(question + 1) };
}

/**
 * RFC 3986 §5.2.4 remove_dot_segments, step by step on an input and an output buffer (rules A to E),
 * as the RFC writes it.
 */
function removeDotSegments(path: string): string {
  let input = path;
  let output = '';
  const dropLastOutputSegment = (): void => {
    const slash = output.lastIndexOf('/');
    output = slash === -1 ? '' : output.slice(0, slash);
  };
  while (input.length > 0) {
    if (input.startsWith('../')) {
      input = input.slice(3); // A
    } else if (input.startsWith('./')) {
      input = input.slice(2); // A
    } else if (input.startsWith('/./')) {
      input = `/${input.slice(3)}`; // B
    } else if (input === '/.') {
      input = '/'; // B
    } else if (input.startsWith('/../')) {
      input = `/${input.slice(4)}`; // C
      dropLastOutputSegment();
    } else if (input === '/..') {
      input = '/'; // C
      dropLastOutputSegment();
    } else if (input === '.' || input === '..') {
      input = ''; // D
    } else {
      // E: the first segment, with its leading '/' if any, up to the next '/'.
      const next = input.indexOf('/', input.startsWith('/') ? 1 : 0);
      const first = next === -1 ? input : input.slice(0, next);
      output += first;
      input = input.slice(first.length);
    }
  }
  return output;
}

/**
 * Part 2: "the path, each segment percent-encoded per RFC 3986, dot segments removed, and a `/`
 * appended if the path does not end with one".
 */
export function referenceCanonicalUri(target: string): string {
  const { path } = splitTarget(target);
  // Each segment in its canonical spelling first: decoded, then encoded. A segment that decodes to
  // "." or ".." (also "%2E", "%2e%2E") is written as that dot segment, so that the RFC's algorithm,
  // which looks for literal dots, removes it; no encoded segment contains '/'.
  const encodedSegments: string[] = [];
  for (const segment of path.split('/')) {
    const bytes = decodeToBytes(segment);
    if (bytesEqualAscii(bytes, '.')) encodedSegments.push('.');
    else if (bytesEqualAscii(bytes, '..')) encodedSegments.push('..');
    else encodedSegments.push(encodeBytes(bytes));
  }
  let encodedPath = encodedSegments.join('/');
  // The canonical URI is absolute: a path given without its leading '/' gets one.
  if (!encodedPath.startsWith('/')) encodedPath = `/${encodedPath}`;
  let canonical = removeDotSegments(encodedPath);
  if (canonical === '') canonical = '/';
  if (!canonical.endsWith('/')) canonical += '/';
  return canonical;
}

/**
 * How a query as sent is read into names and values, and how pairs are ordered: the points where
 * API.md's part 3 ("each name and value percent-encoded …, sorted by name in character-code order")
 * does not decide. The reference's first, literal reading is {@link LITERAL_QUERY_READING}; the
 * project documents another one (lib/koodrive/sign.ts, getCanonicalQuery), {@link PROJECT_QUERY_READING}.
 */
export interface QueryReading {
  /** `+` in the query as sent: a literal plus (RFC 3986), or a space (a URL's query, form encoding). */
  plus: 'literal' | 'space';
  /** Decoded bytes that are not UTF-8: kept as bytes, or replaced by U+FFFD (UTF-8 decode, as URLSearchParams). */
  invalidUtf8: 'bytes' | 'replacement';
  /**
   * "Sorted by name in character-code order": of the encoded names, equal names kept in the order
   * sent; or of the decoded names in UTF-16 code units, equal names by their decoded values (as
   * Huawei's API-gateway SDKs sort before encoding).
   */
  order: 'encoded-name' | 'decoded-name-then-value';
}

/** Part 3 read literally: percent-decoding only, and the written (encoded) pairs sorted by name. */
const LITERAL_QUERY_READING: QueryReading = {
  plus: 'literal',
  invalidUtf8: 'bytes',
  order: 'encoded-name',
};

/** The reading the project documents in lib/koodrive/sign.ts: a URL's query, sorted before encoding. */
export const PROJECT_QUERY_READING: QueryReading = {
  plus: 'space',
  invalidUtf8: 'replacement',
  order: 'decoded-name-then-value',
};

/** UTF-8 decoding that replaces malformed sequences by U+FFFD and keeps a leading BOM. */
function bytesToText(bytes: readonly number[]): string {
  return new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(new Uint8Array(bytes));
}

function readQueryComponent(raw: string, reading: QueryReading): number[] {
  let text = raw;
  if (reading.plus === 'space') text = text.split('+').join(' ');
  const bytes = decodeToBytes(text);
  if (reading.invalidUtf8 === 'replacement') return utf8Bytes(bytesToText(bytes));
  return bytes;
}

/**
 * Part 3: "each name and value percent-encoded …, written `name=value` (the `=` stays when the value
 * is empty), sorted by name in character-code order, joined with `&`; an empty string when there is
 * no query".
 */
function referenceCanonicalQueryString(
  target: string,
  reading: QueryReading = LITERAL_QUERY_READING,
): string {
  const { query } = splitTarget(target);
  if (query === '') return '';
  const pairs: {
    name: string;
    value: string;
    decodedName: string;
    decodedValue: string;
    position: number;
  }[] = [];
  const parts = query.split('&');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (part === '') continue;
    const equals = part.indexOf('=');
    const rawName = equals === -1 ? part : part.slice(0, equals);
    const rawValue = equals === -1 ? '' : part.slice(equals + 1);
    const nameBytes = readQueryComponent(rawName, reading);
    const valueBytes = readQueryComponent(rawValue, reading);
    pairs.push({
      name: encodeBytes(nameBytes),
      value: encodeBytes(valueBytes),
      decodedName: bytesToText(nameBytes),
      decodedValue: bytesToText(valueBytes),
      position: i,
    });
  }
  pairs.sort((a, b) => {
    if (reading.order === 'encoded-name') {
      // Character-code order of the encoded names (all ASCII); equal names keep their order of arrival.
      if (a.name < b.name) return -1;
      if (a.name > b.name) return 1;
      return a.position - b.position;
    }
    // JavaScript's string comparison is by UTF-16 code unit.
    if (a.decodedName < b.decodedName) return -1;
    if (a.decodedName > b.decodedName) return 1;
    if (a.decodedValue < b.decodedValue) return -1;
    if (a.decodedValue > b.decodedValue) return 1;
    return a.position - b.position;
  });
  const written: string[] = [];
  for (const pair of pairs) written.push(`${pair.name}=${pair.value}`);
  return written.join('&');
}

function trimSpacesAndTabs(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value[start] === ' ' || value[start] === '\t')) start++;
  while (end > start && (value[end - 1] === ' ' || value[end - 1] === '\t')) end--;
  return value.slice(start, end);
}

/** The value of one signed header (by lower-case name), or an error if the request lacks it. */
function headerValue(headers: ReferenceRequest['headers'], lowerName: string): string {
  const found: string[] = [];
  for (const [name, value] of headers) {
    if (name.toLowerCase() === lowerName) found.push(value);
  }
  if (found.length === 0) throw new Error(`reference signer: the request has no ${lowerName} header`);
  if (found.length > 1)
    throw new Error(`reference signer: the request has ${found.length} ${lowerName} headers`);
  return found[0] ?? '';
}

/** Part 4: "for each signed header, `lower-case(name) + ':' + trim(value) + '\n'`, sorted by name". */
function referenceCanonicalHeaders(headers: ReferenceRequest['headers']): string {
  const names = [...REFERENCE_SIGNED_HEADER_NAMES].sort();
  let out = '';
  for (const name of names) {
    out += `${name}:${trimSpacesAndTabs(headerValue(headers, name))}\n`;
  }
  return out;
}

/** Part 5: "the same lower-case names, sorted, joined with `;`". */
function referenceSignedHeaders(): string {
  return [...REFERENCE_SIGNED_HEADER_NAMES].sort().join(';');
}

/** Part 6: "lower-case hex SHA-256 of the body". */
function referenceHashedPayload(body: string | Uint8Array | undefined): string {
  if (body === undefined) return sha256Hex('');
  if (typeof body === 'string') return sha256Hex(new TextEncoder().encode(body));
  return sha256Hex(body);
}

// ---------------------------------------------------------------------------------------------------
// The whole rule

export function referenceSign(
  request: ReferenceRequest,
  queryReading: QueryReading = LITERAL_QUERY_READING,
): ReferenceSignature {
  const canonicalUri = referenceCanonicalUri(request.target);
  const canonicalQueryString = referenceCanonicalQueryString(request.target, queryReading);
  const canonicalHeaders = referenceCanonicalHeaders(request.headers);
  const signedHeaders = referenceSignedHeaders();
  const hashedPayload = referenceHashedPayload(request.body);
  // Six parts joined by '\n'; part 4 ends with '\n', so an empty line precedes the signed headers.
  const canonicalRequest = [
    referenceMethod(request.method),
    canonicalUri,
    canonicalQueryString,
    canonicalHeaders,
    signedHeaders,
    hashedPayload,
  ].join('\n');
  // Step 2: algorithm, '\n', hex SHA-256 of the canonical request's UTF-8 bytes (no date line).
  const stringToSign = `${REFERENCE_ALGORITHM}\n${sha256Hex(new TextEncoder().encode(canonicalRequest))}`;
  // Step 3: HMAC-SHA256 keyed with the AppSecret's UTF-8 bytes.
  const signature = createHmac('sha256', new TextEncoder().encode(request.appSecret))
    .update(new TextEncoder().encode(stringToSign))
    .digest('hex');
  // Step 4: one space after the algorithm, commas with no spaces.
  const authorization = `${REFERENCE_ALGORITHM} AppId=${request.appId},SignedHeaders=${signedHeaders},Signature=${signature}`;
  return {
    canonicalUri,
    canonicalQueryString,
    canonicalHeaders,
    signedHeaders,
    hashedPayload,
    canonicalRequest,
    stringToSign,
    signature,
    authorization,
  };
}

/** X-Date: UTC, `YYYYMMDDTHHMMSSZ`, e.g. `20240909T033325Z`. */
export function referenceXDate(instant: Date): string {
  const two = (n: number): string => (n < 10 ? `0${n}` : String(n));
  let year = String(instant.getUTCFullYear());
  while (year.length < 4) year = `0${year}`;
  return (
    year +
    two(instant.getUTCMonth() + 1) +
    two(instant.getUTCDate()) +
    'T' +
    two(instant.getUTCHours()) +
    two(instant.getUTCMinutes()) +
    two(instant.getUTCSeconds()) +
    'Z'
  );
}
