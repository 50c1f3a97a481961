import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { guardOnLoopback } from './host-check.ts';

/**
 * Starts `server` on host and port (0 = any free port) and resolves with its base URL once it listens. On
 * loopback, it answers only requests addressed to this machine (local/host-check.ts), unless `anyHost`:
 * the KooDrive simulator checks signatures over whatever Host a client signed, and holds only demo apps.
 */
export async function listen(
  server: Server,
  port = 0,
  host = '127.0.0.1',
  options: { anyHost?: boolean } = {},
): Promise<string> {
  if (options.anyHost !== true) guardOnLoopback(server, host);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address: AddressInfo | string | null = server.address();
  if (address === null || typeof address === 'string')
    throw new Error('The server is not listening on a TCP port.');
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${shown}:${address.port}`;
}
