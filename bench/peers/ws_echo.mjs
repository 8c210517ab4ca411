// Echo server on the Node `ws` package, a peer for gateway.hpp's benchmark.
// Usage (from the repository root, so node_modules/ws resolves):
//   node bench/peers/ws_echo.mjs PORT      (PORT 0 picks a free port)
// Prints "listening on port N" once listening; exits 0 on SIGINT/SIGTERM.
import { WebSocketServer } from 'ws';

const port = Number.parseInt(process.argv[2] ?? '0', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error('usage: node ws_echo.mjs PORT');
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024,
  clientTracking: false,
});

wss.on('listening', () => {
  process.stdout.write(`listening on port ${wss.address().port}\n`);
});

wss.on('error', (err) => {
  console.error(`server error: ${err.message}`);
  process.exit(1);
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
