/**
 * Shows how a KooDrive request is signed, to compare with what the vendor expects when it refuses a
 * signature. For the README writer — usage:
 *   read -rs KOODRIVE_APP_SECRET && export KOODRIVE_APP_SECRET
 *   node_modules/.bin/node scripts/sign-debug.ts --url https://host/koodrive/ose/v1/space/allocation/get \
 *     --app-id APPID --user-id USERID [--method GET] [--date 20240909T033325Z] [--body '{"a":1}']
 * (or pipe the secret on stdin). The secret is never read from the command line, where shell history
 * and `ps` would keep it, and the output never shows the secret or the signature (only its first 8 hex
 * digits, to compare with another client's).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeSigning, parseSigningDate, signRequest } from '../lib/koodrive/sign.ts';

const SECRET_ENV = 'KOODRIVE_APP_SECRET';
/** Hex digits of the signature shown: a comparison, not a credential. */
const SIGNATURE_PREFIX = 8;
const USAGE = `Usage: node_modules/.bin/node scripts/sign-debug.ts --url URL --app-id APP_ID --user-id USER_ID [--method GET] [--date YYYYMMDDTHHMMSSZ] [--body TEXT]
The AppSecret is read from ${SECRET_ENV}, or else from stdin; never from the command line.`;

export interface SignDebugIo {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  /** Reads the secret when the variable is unset; absent when stdin is a terminal. */
  readStdin?: () => Promise<string>;
  now?: () => Date;
}

export interface SignDebugResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const usageError = (message: string): SignDebugResult => ({
  exitCode: 2,
  stdout: '',
  stderr: `sign-debug: ${message}\n${USAGE}\n`,
});

/** The CLI's core, without process I/O: explains the signing of one request, with the signature redacted. */
export async function runSignDebug(io: SignDebugIo): Promise<SignDebugResult> {
  // Checked before parsing so that the value is never echoed in a parse error.
  if (io.argv.some((arg) => arg.startsWith('-') && /secret/i.test(arg.split('=')[0] ?? ''))) {
    return usageError(
      `the AppSecret is not taken from the command line; set ${SECRET_ENV} or pipe it on stdin.`,
    );
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...io.argv],
      options: {
        url: { type: 'string' },
        'app-id': { type: 'string' },
        'user-id': { type: 'string' },
        method: { type: 'string', default: 'GET' },
        date: { type: 'string' },
        body: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    // A stray word may be the AppSecret typed in the wrong place: node's message would quote it.
    if (Reflect.get(Object(error), 'code') === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      return usageError(
        `every value needs its option, and a word without one was given (not shown: it may be the AppSecret, which is read from ${SECRET_ENV} or stdin only).`,
      );
    }
    return usageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) return { exitCode: 0, stdout: `${USAGE}\n`, stderr: '' };

  const option = (name: string): string | undefined => {
    const value = values[name];
    return typeof value === 'string' ? value : undefined;
  };
  const url = option('url');
  const appId = option('app-id');
  const userId = option('user-id');
  const method = option('method') ?? 'GET';
  const dateText = option('date');
  const body = option('body');
  const missing = [
    ['--url', url],
    ['--app-id', appId],
    ['--user-id', userId],
  ].filter(([, value]) => value === undefined || value === '');
  if (url === undefined || appId === undefined || userId === undefined || missing.length > 0) {
    return usageError(`missing ${missing.map(([name]) => name).join(', ')}.`);
  }
  const signingDate = dateText === undefined ? (io.now ?? (() => new Date()))() : parseSigningDate(dateText);
  if (signingDate === undefined) return usageError(`--date ${dateText} is not YYYYMMDDTHHMMSSZ (UTC).`);
  if (!URL.canParse(url)) return usageError(`--url ${url} is not an absolute URL.`);

  let appSecret = io.env[SECRET_ENV];
  if (appSecret === undefined || appSecret === '') {
    // One trailing newline is what `echo` or a heredoc adds; it is not part of the secret.
    appSecret = io.readStdin === undefined ? '' : (await io.readStdin()).replace(/\r?\n$/, '');
  }
  if (appSecret === '') return usageError(`no AppSecret: set ${SECRET_ENV} or pipe it on stdin.`);

  try {
    const signed = signRequest({
      method,
      url,
      appId,
      appSecret,
      userId,
      signingDate,
      ...(body === undefined ? {} : { body }),
    });
    const headers = Object.entries(signed.headers).map(([name, value]) =>
      name === 'Authorization'
        ? `${name}: ${value.replace(/Signature=[^,]*/, 'Signature=<redacted>')}`
        : `${name}: ${value}`,
    );
    // A prefix of the signature: enough to tell whether another client (the vendor's SDK, a colleague's
    // script) signs this same request and X-Date the same way; far too little to replay the request.
    const signature = /Signature=([0-9a-f]+)/.exec(signed.headers.Authorization ?? '')?.[1] ?? '';
    const prefix = `Signature begins: ${signature.slice(0, SIGNATURE_PREFIX)}… (${SIGNATURE_PREFIX} of its ${signature.length} hex digits, to compare with another client's signature of the same request and X-Date)`;
    return {
      exitCode: 0,
      stdout: `${describeSigning(signed)}\n${prefix}\n\nHeaders to send (signature redacted):\n${headers.join('\n')}\n`,
      stderr: '',
    };
  } catch (error) {
    // signRequest's messages never contain the secret.
    return {
      exitCode: 1,
      stdout: '',
      stderr: `sign-debug: ${error instanceof Error ? error.message : error}\n`,
    };
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream) text += String(chunk);
  return text;
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const result = await runSignDebug({
    argv: process.argv.slice(2),
    env: process.env,
    ...(process.stdin.isTTY ? {} : { readStdin: () => readAll(process.stdin) }),
  });
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
  process.exitCode = result.exitCode;
}
