/**
 * Preloaded (`node --import`) into `serverless offline` by local/start.ts, and nowhere else. Offline runs detached,
 * in its own session and process group, so that stopping can reach everything it started; but then neither the
 * terminal's SIGHUP nor the end of start.ts reaches it, and an offline left behind keeps the API and Lambda ports
 * (answering 503s, and refusing the next `npm start`). start.ts spawns it with an IPC channel, which the system
 * closes however start.ts ends (an uncaught exception, SIGKILL, a signal it does not handle): when it closes, this
 * stops offline's group as start.ts would have, SIGINT then SIGKILL after the same 10 s grace.
 * It also keeps offline's HTTP ports to requests addressed to this machine (see the end of this file).
 */
import { Server } from 'node:http';
import { guardEveryServer } from './host-check.ts';
import { redirectDashboardSlash } from './trailing-slash.ts';

const GRACE_MS = 10_000;

function signalOwnGroup(signal: NodeJS.Signals): void {
  try {
    // Negative pid: the group this process leads (spawned detached, its pid is the group's id). Not a group leader,
    // there is no such group and nothing is signalled.
    process.kill(-process.pid, signal);
  } catch {
    // Already gone.
  }
}

const channel = process.channel;
if (channel !== undefined) {
  process.once('disconnect', () => {
    signalOwnGroup('SIGINT');
    setTimeout(() => signalOwnGroup('SIGKILL'), GRACE_MS).unref();
  });
  // Listening for 'disconnect' holds the channel, which alone must not keep offline alive.
  channel.unref();
}

// Every HTTP server offline starts (the API and the Lambda invoke port) answers only requests addressed to this
// machine and not sent by a web page of another origin (local/host-check.ts): a 403 problem, and the request
// never reaches offline's router or a function.
// The chart function's redirect of /dashboard/, which offline's router keeps from it (local/trailing-slash.ts);
// wrapped first, so that the host check above still comes before it.
redirectDashboardSlash(Server.prototype);
guardEveryServer(Server.prototype);
