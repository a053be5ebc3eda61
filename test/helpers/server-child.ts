/**
 * A server in its own process, for tests that kill it: `node <childScript(server-child.ts)> <index>`
 * (helpers/child-script.ts) prints `listening <port>` once it serves, then runs until killed.
 */
import { loadConfig } from '../../src/config/load-config.js';
import { startServer } from '../../src/server/server.js';

const [index = ''] = process.argv.slice(2);
const server = await startServer(
  loadConfig(undefined, { 'index.dir': index, 'server.port': '0', 'server.http_port': '-1' }, {}),
);
process.stdout.write(`listening ${server.port}\n`);
