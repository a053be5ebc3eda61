/**
 * A flanstream server in its own process for the reliability tests (so it can be SIGKILLed and
 * its RSS read from /proc): `node <childScript(child-server.ts)> <index> [overridesJson]` prints
 * `listening <grpcPort> <httpPort>` once it serves, then `lag <ms>` (worst event-loop delay so
 * far, perf_hooks.monitorEventLoopDelay) every second until killed.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../../src/config/load-config.js';
import { startServer } from '../../src/server/server.js';

const [index = '', overrides = '{}'] = process.argv.slice(2);
const server = await startServer(
  loadConfig(
    undefined,
    {
      'index.dir': index,
      'server.port': '0',
      'server.http_port': '0',
      ...(JSON.parse(overrides) as Record<string, string>),
    },
    {},
  ),
);
process.stdout.write(`listening ${server.port} ${server.httpPort}\n`);
// The worst event-loop delay so far (ms), once a second: procs.ts keeps the last value.
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
setInterval(() => process.stdout.write(`lag ${(lag.max / 1e6).toFixed(1)}\n`), 1000).unref();
// SIGTERM exits at once but normally, so a server started with --cpu-prof writes its profile.
process.once('SIGTERM', () => process.exit(0));
