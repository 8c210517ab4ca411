// Reference Socket.IO v5 server used to validate tests/conformance/socketio_suite.mjs itself.
//
// Usage (from the repository root, so that `socket.io` resolves from node_modules):
//   node tests/conformance/socketio_node_reference.mjs PORT
//
// Listens on 127.0.0.1:PORT (0 = pick a free port), prints "listening on port N", exits with
// status 0 on SIGTERM / SIGINT. Behaviour (the contract the suite checks):
//   * Socket.IO at /socket.io/, pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000,
//     connectTimeout 1000 ms, CORS for any origin (with GW_TEST_PATIENT set, pingTimeout and
//     connectTimeout 5 s, as tests/conformance/socketio_reference.cpp);
//   * namespaces "/" and "/custom" only; on connection each emits "auth" with the CONNECT
//     payload (socket.handshake.auth) as its only argument;
//   * "message" is answered with "message-back" and the same arguments;
//   * "message-with-ack" is acknowledged with the same arguments.
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.argv[2] ?? 0);
const patient = Boolean(process.env.GW_TEST_PATIENT);

const httpServer = createServer();
const io = new Server(httpServer, {
  path: '/socket.io/',
  pingInterval: 300,
  pingTimeout: patient ? 5000 : 200,
  maxHttpBufferSize: 1e6,
  connectTimeout: patient ? 5000 : 1000,
  cors: { origin: '*' },
});

function serve(nsp) {
  nsp.on('connection', (socket) => {
    socket.emit('auth', socket.handshake.auth);
    socket.on('message', (...args) => {
      socket.emit('message-back', ...args);
    });
    socket.on('message-with-ack', (...args) => {
      const ack = args.pop();
      if (typeof ack === 'function') ack(...args);
    });
  });
}
serve(io.of('/'));
serve(io.of('/custom'));

httpServer.listen(port, '127.0.0.1', () => {
  // stdout is a pipe under the test driver; writes to pipes are synchronous on POSIX.
  process.stdout.write(`listening on port ${httpServer.address().port}\n`);
});

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  io.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
