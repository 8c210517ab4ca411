// Reference echo server used to validate tests/conformance/autobahn.py itself.
//
// Usage (from the repository root, so that `ws` resolves from node_modules):
//   node tests/conformance/reference_echo.mjs PORT [--deflate shared|dedicated]
//
// Listens on 127.0.0.1:PORT (0 = pick a free port), prints
// "listening on port N", echoes text as text and binary as binary,
// maxPayload 64 MiB, exits with status 0 on SIGTERM / SIGINT.
//
// --deflate turns on permessage-deflate (RFC 7692), compressing every message
// (threshold 0) so that autobahn.py's categories 12/13 see compressed echoes:
//   shared     no context takeover either way, as a server that shares one
//              compressor between connections must ask for;
//   dedicated  context takeover, each connection keeping its own zlib streams.
import { WebSocketServer } from 'ws';

const usage = 'usage: node reference_echo.mjs PORT [--deflate shared|dedicated]';
const port = Number(process.argv[2] ?? 0);
const modes = {
  shared: { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 },
  dedicated: { threshold: 0 },
};
let perMessageDeflate = false;
if (process.argv.length > 3) {
  const mode = process.argv[3] === '--deflate' ? modes[process.argv[4]] : undefined;
  if (!mode || process.argv.length > 5) {
    console.error(usage);
    process.exit(2);
  }
  perMessageDeflate = mode;
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  maxPayload: 64 * 1024 * 1024,
  // ws >= 8.19 caps messages at 16384 fragments by default (1008 beyond that);
  // Autobahn 9.3.1/9.4.1 send 65536 fragments, so lift the cap.
  maxFragments: 0,
  perMessageDeflate,
});

wss.on('listening', () => {
  // stdout is a pipe under the test driver; writes to pipes are synchronous on POSIX.
  process.stdout.write(`listening on port ${wss.address().port}\n`);
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  // Protocol violations surface as 'error' after ws has sent the close frame.
  ws.on('error', () => {});
});

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  for (const client of wss.clients) client.terminate();
  wss.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
