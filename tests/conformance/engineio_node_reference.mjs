// Reference Engine.IO v4 echo server, used to validate tests/conformance/engineio_suite.mjs itself.
//
// Usage (from the repository root, so that `engine.io` resolves from node_modules):
//   node tests/conformance/engineio_node_reference.mjs PORT [PATH]
//
// Listens on 127.0.0.1:PORT (0 = pick a free port) with the settings the suite expects:
// path PATH (default /engine.io/), pingInterval 300 ms, pingTimeout 200 ms, maxHttpBufferSize 1e6,
// CORS for any origin without credentials (with GW_TEST_PATIENT set, pingTimeout 5 s, as
// tests/conformance/engineio_echo.cpp). Every message is sent back as it came (text as text,
// binary as binary). Prints "listening on port N" once listening; exits with status 0 on
// SIGTERM / SIGINT.
import http from 'node:http';
import process from 'node:process';
import { Server } from 'engine.io';

const port = Number(process.argv[2] ?? 0);
const path = process.argv[3] ?? '/engine.io/';
const patient = Boolean(process.env.GW_TEST_PATIENT);
if (!Number.isInteger(port) || port < 0 || port > 65535 || !path.startsWith('/')) {
  process.stderr.write('usage: node engineio_node_reference.mjs PORT [PATH]\n');
  process.exit(2);
}

const httpServer = http.createServer();
const engine = new Server({
  pingInterval: 300,
  pingTimeout: patient ? 5000 : 200,
  maxHttpBufferSize: 1e6,
  cors: { origin: '*', credentials: false },
});
engine.attach(httpServer, { path });

engine.on('connection', (socket) => {
  // Buffers stay Buffers, so binary goes back as a binary frame (or `b<base64>` on polling).
  socket.on('message', (data) => socket.send(data));
});

httpServer.listen(port, '127.0.0.1', () => {
  // stdout is a pipe under the test driver; writes to pipes are synchronous on POSIX.
  process.stdout.write(`listening on port ${httpServer.address().port}\n`);
});

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  engine.close();
  httpServer.close(() => process.exit(0));
  httpServer.closeAllConnections?.();
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
