// node_server.mjs [--tls CERT KEY]
//
// A `ws` (Node) echo server that gateway.hpp's C++ client is tested against.
//
//  * listens on 127.0.0.1, port 0 (ephemeral), and prints
//    "listening on port N" once it is listening;
//  * echoes text as text and binary as binary;
//  * text "close-me" -> closes the connection with 4002 "server says bye";
//  * text "ping-me"  -> sends a ping with payload "abc"; when the client's
//    pong arrives, sends the text "pong:<payload of the pong>";
//  * text "protocol?" -> answers with the agreed subprotocol (or "none");
//  * if the client offers subprotocol "chat.v2" it is selected, otherwise none;
//  * exits 0 on SIGTERM/SIGINT, and also exits (0) when its stdin reaches EOF,
//    so a harness that dies cannot leave it running. (Consequently, do not
//    start it with stdin from /dev/null: keep a pipe open to it.)
//  * with --tls CERT KEY it serves wss:// (https.createServer).
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import process from 'node:process';
import { WebSocketServer } from 'ws';

function usage(msg) {
  if (msg) process.stderr.write(`node_server.mjs: ${msg}\n`);
  process.stderr.write('usage: node node_server.mjs [--tls CERT_PEM KEY_PEM]\n');
  process.exit(2);
}

let tls = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--tls') {
    if (i + 2 >= argv.length) usage('--tls needs CERT and KEY');
    tls = { cert: argv[i + 1], key: argv[i + 2] };
    i += 2;
  } else {
    usage(`unknown argument ${argv[i]}`);
  }
}

let httpServer;
try {
  httpServer = tls
    ? https.createServer({ cert: fs.readFileSync(tls.cert), key: fs.readFileSync(tls.key) })
    : http.createServer();
} catch (err) {
  process.stderr.write(`node_server.mjs: ${err.message}\n`);
  process.exit(1);
}

// Plain HTTP requests that are not upgrades get a short 426.
httpServer.on('request', (req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain', Connection: 'close' });
  res.end('WebSocket upgrade required\n');
});

const wss = new WebSocketServer({
  server: httpServer,
  perMessageDeflate: false,
  maxPayload: 64 * 1024 * 1024,
  handleProtocols: (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false),
});

wss.on('connection', (ws) => {
  ws.on('pong', (payload) => ws.send(`pong:${payload.toString('utf8')}`));
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString('utf8');
      if (text === 'close-me') {
        ws.close(4002, 'server says bye');
        return;
      }
      if (text === 'ping-me') {
        ws.ping('abc');
        return;
      }
      if (text === 'protocol?') {
        ws.send(ws.protocol || 'none');
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  // Closes are silent. Errors (protocol violations by the peer) go to stderr,
  // except plain connection resets, which are an ordinary way to go away.
  ws.on('error', (err) => {
    if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') {
      process.stderr.write(`node_server.mjs: connection error: ${err.message}\n`);
    }
  });
});

wss.on('error', (err) => {
  process.stderr.write(`node_server.mjs: ${err.message}\n`);
  process.exit(1);
});
httpServer.on('error', (err) => {
  process.stderr.write(`node_server.mjs: ${err.message}\n`);
  process.exit(1);
});
httpServer.on('tlsClientError', () => {}); // a client rejecting our cert is not our problem

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  for (const client of wss.clients) client.terminate();
  wss.close();
  httpServer.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();

httpServer.listen(0, '127.0.0.1', () => {
  // process.stdout is synchronous for files and pipes on POSIX, so the line
  // is out by the time write() returns.
  process.stdout.write(`listening on port ${httpServer.address().port}\n`);
});
