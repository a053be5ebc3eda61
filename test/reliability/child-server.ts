/**
 * A flanstream server in its own process for the reliability tests (so it can be SIGKILLed and
 * its RSS read from /proc): `node --import tsx child-server.ts <index> [overridesJson]` prints
 * `listening <grpcPort> <httpPort>` once it serves, then runs until killed.
 */
import { loadConfig } from '../../src/config/load-config.js';
import { startServer } from '../../src/server/server.js';

const [index = '', overrides = '{}'] = process.argv.slice(2);
const server = await startServer(
  loadConfig(undefined, { 'index.dir': index, 'server.port': '0', 'server.http_port': '0', ...(JSON.parse(overrides) as Record<string, string>) }, {}),
);
process.stdout.write(`listening ${server.port} ${server.httpPort}\n`);
