/**
 * The KooDrive simulator in its own process, so that its CPU is not the measured process's. The
 * parent sends `{op: 'start', apps, latencyMs}` and gets `{url}`; then `setLatency`, `addApps`,
 * `requests` (answered with the count so far), `reset` and `close`, each acknowledged.
 */
import {
  type KooDriveSimulator,
  type SimulatorApp,
  startKooDriveSimulator,
} from '../../local/koodrive-simulator.ts';
import { isRecord, runProbe, send } from './common.ts';

function appsOf(value: unknown): SimulatorApp[] {
  if (!Array.isArray(value)) return [];
  return value.filter(isRecord).map((app) => ({
    appId: String(app.appId),
    appSecret: String(app.appSecret),
    userId: String(app.userId),
    ...(app.data === undefined ? {} : { data: app.data }),
  }));
}

runProbe(async () => {
  let simulator: KooDriveSimulator | undefined;
  process.on('message', (message: unknown) => {
    void (async () => {
      if (!isRecord(message)) return;
      const latencyMs = typeof message.latencyMs === 'number' ? message.latencyMs : 0;
      switch (message.op) {
        case 'start':
          simulator = await startKooDriveSimulator({ apps: appsOf(message.apps), latencyMs });
          await send({ op: 'start', url: simulator.url });
          return;
        case 'addApps':
          for (const app of appsOf(message.apps)) simulator?.setApp(app);
          break;
        case 'setLatency':
          simulator?.setLatencyMs(latencyMs);
          break;
        case 'reset':
          simulator?.reset();
          break;
        case 'requests':
          await send({ op: 'requests', count: simulator?.requests.length ?? 0 });
          return;
        case 'close':
          await simulator?.close();
          await send({ op: 'close' });
          process.exit(0);
      }
      await send({ op: message.op });
    })();
  });
});
