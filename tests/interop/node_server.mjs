// node_server.mjs [--tls CERT KEY] [--deflate [--deflate-threshold N]]
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
//  * with --deflate it accepts permessage-deflate (`perMessageDeflate` with
//    ws's defaults, but threshold 0: every message goes compressed; N with
//    --deflate-threshold, and shorter messages go uncompressed);
//    text "extensions?" -> answers with the Sec-WebSocket-Extensions value of
//    its handshake response (or "none" when nothing was agreed), and
//    "bytes?" -> with the number of bytes read from the client's socket so
//    far, which shows whether the client compressed.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import process from 'node:process';
import { WebSocketServer } from 'ws';

function usage(msg) {
  if (msg) process.stderr.write(`node_server.mjs: ${msg}\n`);
  process.stderr.write('usage: node node_server.mjs [--tls CERT_PEM KEY_PEM] [--deflate [--deflate-threshold N]]\n');
  process.exit(2);
}

let tls = null;
let deflate = false;
let deflateThreshold = 0;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--tls') {
    if (i + 2 >= argv.length) usage('--tls needs CERT and KEY');
    tls = { cert: argv[i + 1], key: argv[i + 2] };
    i += 2;
  } else if (argv[i] === '--deflate') {
    deflate = true;
  } else if (argv[i] === '--deflate-threshold') {
    deflateThreshold = Number(argv[++i]);
    if (!Number.isInteger(deflateThreshold) || deflateThreshold < 0) usage('--deflate-threshold needs a byte count');
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
  perMessageDeflate: deflate ? { threshold: deflateThreshold } : false,
  maxPayload: 64 * 1024 * 1024,
  handleProtocols: (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false),
});

// The Sec-WebSocket-Extensions line of each handshake's response, by request.
const answers = new WeakMap();
wss.on('headers', (headers, req) => {
  const line = headers.find((h) => /^sec-websocket-extensions:/i.test(h));
  if (line) answers.set(req, line.slice(line.indexOf(':') + 1).trim());
});

wss.on('connection', (ws, req) => {
  ws.on('pong', (payload) => ws.send(`pong:${payload.toString('utf8')}`));
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString('utf8');
      if (text === 'extensions?') {
        ws.send(ws.extensions === 'permessage-deflate' ? answers.get(req) : 'none');
        return;
      }
      if (text === 'bytes?') {
        ws.send(String(req.socket.bytesRead));
        return;
      }
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
