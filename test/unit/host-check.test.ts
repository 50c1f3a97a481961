/** The local stack's guard against DNS rebinding and cross-origin pages (local/host-check.ts). */

import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { guardOnLoopback, refusedRequest } from '../../local/host-check.ts';

describe('refusedRequest', () => {
  it.each([
    ['127.0.0.1 with a port', { host: '127.0.0.1:3000' }],
    ['localhost, any case', { host: 'LocalHost:3002' }],
    ['IPv6 loopback', { host: '[::1]:3000' }],
    ['no port', { host: 'localhost' }],
    ['the fully qualified name, with its trailing dot', { host: 'localhost.:3000' }],
    ['a page of the fully qualified name', { host: 'localhost.:3000', origin: 'http://localhost.:3000' }],
    ['no Host at all (HTTP/1.0)', {}],
    ['a page served from the stack itself', { host: '127.0.0.1:3000', origin: 'http://127.0.0.1:3000' }],
    ['a page on another local port', { host: '127.0.0.1:3000', origin: 'http://localhost:5173' }],
  ])('serves %s', (_name, headers) => {
    expect(refusedRequest(headers)).toBeUndefined();
  });

  it.each([
    [
      'a rebound name',
      { host: 'attacker.example:3000' },
      /addressed to 127\.0\.0\.1 or localhost; this one came for host 'attacker\.example:3000', the way a web page reaches it by DNS rebinding/,
    ],
    [
      'a name ending like localhost',
      { host: 'localhost.attacker.example:3000' },
      /came for host 'localhost\.attacker\.example:3000'/,
    ],
    ['another address of this machine', { host: '192.168.1.20:3000' }, /came for host/],
    ['a rebound name with a trailing dot', { host: 'attacker.example.:3000' }, /came for host/],
    ['a name of two trailing dots', { host: 'localhost..:3000' }, /came for host/],
    ['a malformed Host', { host: '127.0.0.1:3000:1' }, /came for host/],
    [
      'a page of another origin',
      { host: '127.0.0.1:3002', origin: 'https://attacker.example' },
      /no request a web page of another origin sends \(this one came from 'https:\/\/attacker\.example'\)/,
    ],
    [
      'a sandboxed or file page (Origin: null)',
      { host: '127.0.0.1:3000', origin: 'null' },
      /came from 'null'/,
    ],
  ])('refuses %s, saying why and how to call it', (_name, headers, why) => {
    expect(refusedRequest(headers)).toMatch(why);
  });
});

describe('guardOnLoopback', () => {
  it.each([
    ['127.0.0.1', true],
    ['localhost', true],
    ['::1', true],
    ['0.0.0.0', false],
    ['192.168.1.20', false],
  ])('guards a server bound to %s: %s', (host, guarded) => {
    const server = createServer();
    const plain = server.emit;
    guardOnLoopback(server, host);
    expect(server.emit !== plain).toBe(guarded);
  });
});
