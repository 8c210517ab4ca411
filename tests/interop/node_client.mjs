// node_client.mjs URL [--ca CA.pem] [--deflate shared|dedicated [--deflate-threshold N]]
//
// Interop test: drives a WebSocket echo server at URL (ws:// or wss://) with
// Node's `ws` client. With --ca, that PEM is the (only) trust anchor and the
// certificate is verified normally (chain and host name).
//
// With --deflate MODE the client offers permessage-deflate (RFC 7692; ws's
// `perMessageDeflate`, with its default threshold of 1024 bytes, or N with
// --deflate-threshold) to a server whose deflate mode is MODE: every
// connection must agree the extension with the parameters that mode answers
// (shared: no context takeover either way; dedicated: context takeover both
// ways), and scenarios that look at the bytes on the wire are added.
//
// Prints one line per scenario, "PASS name" or "FAIL name: why", then
// "N passed, M failed"; exit status 0 iff nothing failed.
// Each scenario has a time limit (INTEROP_TIMEOUT_MS, default 10000 ms);
// running over it is a failure.
import fs from 'node:fs';
import process from 'node:process';
import zlib from 'node:zlib';
import { WebSocket } from 'ws';

function usage(msg) {
  if (msg) process.stderr.write(`node_client.mjs: ${msg}\n`);
  process.stderr.write('usage: node node_client.mjs URL [--ca CA_PEM] [--deflate shared|dedicated [--deflate-threshold N]]\n');
  process.exit(2);
}

let url = null;
let caFile = null;
let deflateMode = null;      // the server's: 'shared' or 'dedicated'
let deflateThreshold = null; // null: ws's default
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--ca') {
      if (i + 1 >= argv.length) usage('--ca needs a file');
      caFile = argv[++i];
    } else if (argv[i] === '--deflate') {
      deflateMode = argv[++i];
      if (deflateMode !== 'shared' && deflateMode !== 'dedicated') usage('--deflate needs shared or dedicated');
    } else if (argv[i] === '--deflate-threshold') {
      deflateThreshold = Number(argv[++i]);
      if (!Number.isInteger(deflateThreshold) || deflateThreshold < 0) usage('--deflate-threshold needs a byte count');
    } else if (url === null) {
      url = argv[i];
    } else {
      usage(`unexpected argument ${argv[i]}`);
    }
  }
}
if (!url || !/^wss?:\/\//i.test(url)) usage('URL must start with ws:// or wss://');
if (deflateThreshold !== null && !deflateMode) usage('--deflate-threshold goes with --deflate');

const clientOptions = {};
if (caFile) clientOptions.ca = fs.readFileSync(caFile);
if (deflateMode) clientOptions.perMessageDeflate = deflateThreshold === null ? true : { threshold: deflateThreshold };
const TIMEOUT_MS = Number(process.env.INTEROP_TIMEOUT_MS) || 10000;

// A stray rejection from an abandoned (timed-out) scenario must not kill the run.
process.on('unhandledRejection', () => {});

// ---------------------------------------------------------------- helpers

/** One client connection with an awaitable queue of received messages. */
class Conn {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closeInfo = null;
    this.error = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        for (const w of this.waiters.splice(0)) {
          w.reject(new Error(`connection closed (code ${code}) while waiting for a message`
            + (this.error ? ` after error: ${this.error.message}` : '')));
        }
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data, isBinary) => {
      const msg = { data: Buffer.isBuffer(data) ? data : Buffer.concat(data), isBinary };
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.queue.push(msg);
    });
    ws.on('error', (err) => { this.error = err; });
  }

  /** Next received message: {data: Buffer, isBinary: boolean}. */
  next() {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closeInfo) {
      return Promise.reject(new Error(`connection already closed (code ${this.closeInfo.code})`));
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  send(data, options = {}) {
    return new Promise((resolve, reject) => {
      this.ws.send(data, options, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Graceful close; resolves with the close info, rejects on an unclean close. */
  async close(code = 1000, reason = '') {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    const info = await this.closed;
    if (info.code === 1006) {
      throw new Error('connection dropped without a close handshake (1006)'
        + (this.error ? `: ${this.error.message}` : ''));
    }
    return info;
  }
}

/** Per-scenario context: every socket opened through it is torn down at the end. */
class Ctx {
  constructor() { this.sockets = []; }

  /**
   * Opens a connection; resolves to a Conn once the handshake is done. With --deflate, the
   * handshake must have agreed permessage-deflate as the server's mode answers; conn.socket is the
   * TCP (or TLS) socket, whose byte counts show what went over the wire.
   */
  open(protocols = undefined, hooks = {}) {
    const ws = new WebSocket(url, protocols, clientOptions);
    this.sockets.push(ws);
    const conn = new Conn(ws);
    let answer;
    ws.once('upgrade', (res) => {
      answer = res.headers['sec-websocket-extensions'];
      conn.socket = res.socket;
    });
    if (hooks.onUpgrade) ws.on('upgrade', hooks.onUpgrade);
    return new Promise((resolve, reject) => {
      const fail = (err) => reject(err);
      ws.once('open', () => {
        ws.off('error', fail);
        const wrong = deflateMode && deflateAnswerProblem(ws.extensions, answer);
        if (wrong) reject(new Error(wrong));
        else resolve(conn);
      });
      ws.once('error', fail);
      ws.once('unexpected-response', (req, res) => {
        reject(new Error(`handshake got HTTP ${res.statusCode} instead of 101`));
        req.destroy();
      });
    });
  }

  cleanup() {
    for (const ws of this.sockets) {
      if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    }
  }
}

/**
 * What is wrong with a handshake's permessage-deflate agreement for --deflate MODE, or null. ws
 * offers "permessage-deflate; client_max_window_bits"; a shared server answers with no context
 * takeover either way, a dedicated one with neither parameter (both sides keep their context).
 */
function deflateAnswerProblem(extensions, answer) {
  if (extensions !== 'permessage-deflate') {
    return `ws.extensions is ${JSON.stringify(extensions)}, want "permessage-deflate" (answer: ${answer})`;
  }
  const params = new Set(String(answer).split(';').slice(1).map((p) => p.trim().toLowerCase()));
  const want = deflateMode === 'shared' ? ['client_no_context_takeover', 'server_no_context_takeover'] : [];
  if ([...params].sort().join() !== want.join()) {
    return `Sec-WebSocket-Extensions: ${answer}; a ${deflateMode} server answers with ${want.length ? want.join(', ') : 'no parameters'}`;
  }
  return null;
}

function describe(msg) {
  return `${msg.isBinary ? 'binary' : 'text'} message of ${msg.data.length} bytes`;
}

/** Throws unless msg is exactly `expected` (Buffer) with the given type. */
function expectMessage(msg, expected, isBinary, what = 'echo') {
  if (msg.isBinary !== isBinary) {
    throw new Error(`${what}: expected ${isBinary ? 'binary' : 'text'}, got ${describe(msg)}`);
  }
  if (!msg.data.equals(expected)) {
    let i = 0;
    const n = Math.min(msg.data.length, expected.length);
    while (i < n && msg.data[i] === expected[i]) i++;
    throw new Error(`${what}: expected ${expected.length} bytes, got ${msg.data.length}; `
      + `first difference at byte ${i}`);
  }
}

/** `n` bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte sequences. */
function utf8Text(n) {
  const unit = Buffer.from('aé€😀', 'utf8'); // 1 + 2 + 3 + 4 = 10 bytes
  const out = Buffer.alloc(n, 0x61); // pad with 'a'
  let pos = 0;
  while (pos + unit.length <= n) { unit.copy(out, pos); pos += unit.length; }
  return out;
}

function patternBytes(n, seed = 0) {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function echoOnce(conn, payload, isBinary) {
  await conn.send(payload, { binary: isBinary });
  expectMessage(await conn.next(), Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8'),
    isBinary);
}

function waitPong(ws) {
  return new Promise((resolve) => ws.once('pong', resolve));
}

// -------------------------------------------------------------- scenarios

const scenarios = [];
const scenario = (name, fn) => scenarios.push({ name, fn });

scenario('text echo (ASCII)', async (ctx) => {
  const c = await ctx.open();
  if (c.ws.protocol !== '') throw new Error(`unexpected subprotocol '${c.ws.protocol}'`);
  await echoOnce(c, 'Hello, gateway!', false);
  await c.close();
});

scenario('text echo (multi-byte UTF-8 incl. emoji)', async (ctx) => {
  const c = await ctx.open();
  for (const s of ['héllo wörld', 'ΚΑΛΗΜΕΡΑ κόσμε', '日本語のテキスト', '😀🎉🚀 emoji 👍🏽',
    '\u0000nul and \u{10FFFF} max code point', '\uFEFFBOM first']) {
    await echoOnce(c, s, false);
  }
  await c.close();
});

scenario('binary echo (all 256 byte values)', async (ctx) => {
  const c = await ctx.open();
  const all = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  await echoOnce(c, all, true);
  await echoOnce(c, Buffer.from(all).reverse(), true);
  await c.close();
});

scenario('empty text message', async (ctx) => {
  const c = await ctx.open();
  await echoOnce(c, '', false);
  await c.close();
});

scenario('empty binary message', async (ctx) => {
  const c = await ctx.open();
  await echoOnce(c, Buffer.alloc(0), true);
  await c.close();
});

for (const size of [125, 126, 65535, 65536, 1024 * 1024]) {
  scenario(`text ${size} bytes`, async (ctx) => {
    const c = await ctx.open();
    await echoOnce(c, utf8Text(size), false);
    await c.close();
  });
  scenario(`binary ${size} bytes`, async (ctx) => {
    const c = await ctx.open();
    await echoOnce(c, patternBytes(size, size), true);
    await c.close();
  });
}

scenario('200 messages back-to-back, echoed in order', async (ctx) => {
  const c = await ctx.open();
  const sent = [];
  for (let i = 0; i < 200; i++) {
    const isBinary = i % 2 === 1;
    const len = (i * 37) % 300; // crosses the 125/126 length boundary
    const data = isBinary
      ? Buffer.concat([Buffer.from([i]), patternBytes(len, i)])
      : Buffer.from(`#${i}:` + 'x'.repeat(len), 'utf8');
    sent.push({ data, isBinary });
    c.ws.send(data, { binary: isBinary }); // no awaiting: really back-to-back
  }
  for (let i = 0; i < 200; i++) {
    expectMessage(await c.next(), sent[i].data, sent[i].isBinary, `message #${i}`);
  }
  await c.close();
});

scenario('fragmented text message reassembled', async (ctx) => {
  const c = await ctx.open();
  c.ws.send('Hel', { fin: false });
  c.ws.send('lo, ', { fin: false });
  c.ws.send('fragmented world', { fin: true });
  expectMessage(await c.next(), Buffer.from('Hello, fragmented world'), false);
  await c.close();
});

scenario('fragmented text with a UTF-8 character split across frames', async (ctx) => {
  const c = await ctx.open();
  const whole = Buffer.from('price: 5€ 😀', 'utf8');
  const euro = whole.indexOf(0xe2);
  const emoji = whole.indexOf(0xf0);
  // Split inside the 3-byte euro sign and inside the 4-byte emoji.
  const parts = [whole.subarray(0, euro + 1), whole.subarray(euro + 1, emoji + 2),
    whole.subarray(emoji + 2)];
  c.ws.send(parts[0], { binary: false, fin: false });
  c.ws.send(parts[1], { binary: false, fin: false });
  c.ws.send(parts[2], { binary: false, fin: true });
  expectMessage(await c.next(), whole, false);
  await c.close();
});

scenario('fragmented binary message reassembled', async (ctx) => {
  const c = await ctx.open();
  const parts = [patternBytes(1000, 1), patternBytes(70000, 2), Buffer.alloc(0), patternBytes(3, 3)];
  parts.forEach((p, i) => c.ws.send(p, { binary: true, fin: i === parts.length - 1 }));
  expectMessage(await c.next(), Buffer.concat(parts), true);
  await c.close();
});

scenario('fragmented message with a ping between fragments', async (ctx) => {
  const c = await ctx.open();
  const pong = waitPong(c.ws);
  c.ws.send('first half, ', { fin: false });
  c.ws.ping('mid-message');
  c.ws.send('second half', { fin: true });
  const got = await pong;
  if (got.toString() !== 'mid-message') throw new Error(`pong payload '${got}'`);
  expectMessage(await c.next(), Buffer.from('first half, second half'), false);
  await c.close();
});

scenario('ping -> pong with the same payload', async (ctx) => {
  const c = await ctx.open();
  for (const payload of [Buffer.from('interop-ping'), Buffer.alloc(0), patternBytes(125, 7)]) {
    const pong = waitPong(c.ws);
    c.ws.ping(payload);
    const got = await pong;
    if (!got.equals(payload)) {
      throw new Error(`ping of ${payload.length} bytes answered by pong of ${got.length} bytes `
        + '(payload differs)');
    }
  }
  // The connection still works after the pings.
  await echoOnce(c, 'after ping', false);
  await c.close();
});

scenario('close 4000 "bye" -> server echoes code 4000 and reason', async (ctx) => {
  const c = await ctx.open();
  await echoOnce(c, 'before close', false);
  const info = await c.close(4000, 'bye');
  if (info.code !== 4000) throw new Error(`close event code ${info.code}, expected 4000`);
  if (info.reason !== 'bye') throw new Error(`close event reason '${info.reason}', expected 'bye'`);
});

scenario('subprotocols offered, server selects none', async (ctx) => {
  // RFC 6455 lets a server answer without Sec-WebSocket-Protocol. ws 8 is
  // stricter and aborts such handshakes with "Server sent no subprotocol", so
  // accept either outcome as long as the server did answer 101 and did not
  // pick a protocol.
  let response = null;
  const offered = ['x-gateway-unknown.v1', 'x-gateway-unknown.v2'];
  try {
    const c = await ctx.open(offered, { onUpgrade: (res) => { response = res; } });
    if (c.ws.protocol !== '') throw new Error(`protocol is '${c.ws.protocol}', expected ''`);
    await echoOnce(c, 'no subprotocol', false);
    await c.close();
  } catch (err) {
    if (!response) throw new Error(`handshake failed before a 101 response: ${err.message}`);
    if (response.headers['sec-websocket-protocol'] !== undefined) {
      throw new Error(`server selected '${response.headers['sec-websocket-protocol']}' `
        + `(offered: ${offered.join(', ')})`);
    }
    if (err.message !== 'Server sent no subprotocol') throw err;
  }
  if (response && response.headers['sec-websocket-protocol'] !== undefined) {
    throw new Error(`server selected '${response.headers['sec-websocket-protocol']}'`);
  }
});

scenario('50 concurrent connections, one echo each', async (ctx) => {
  const N = 50;
  const conns = await Promise.all(Array.from({ length: N }, () => ctx.open()));
  await Promise.all(conns.map((c, i) => echoOnce(c, `connection ${i} says hi ✓`, false)));
  await Promise.all(conns.map((c) => c.close()));
});

// ------------------------------------------------- permessage-deflate (--deflate)

/** Bytes read and written so far on a connection's socket (TLS records included for wss://). */
function wire(conn) {
  return { read: conn.socket.bytesRead, written: conn.socket.bytesWritten };
}

/** A JSON record as a chat or a dashboard sends them: similar from one message to the next. */
function record(i) {
  return JSON.stringify({
    seq: i, user: `user-${i % 7}`, room: 'lobby', kind: i % 3 ? 'message' : 'presence',
    text: `message number ${i} about the weather in région ${i % 13}: ☀ then 🌧`,
    tags: ['interop', 'deflate', `t${i % 5}`], at: 1700000000000 + i * 250,
  });
}

if (deflateMode) {
  scenario('deflate: long JSON text, compressed on the wire both ways', async (ctx) => {
    const c = await ctx.open();
    const text = JSON.stringify(Array.from({ length: 1500 }, (_, i) => JSON.parse(record(i))));
    const before = wire(c);
    await echoOnce(c, text, false);
    const after = wire(c);
    const size = Buffer.byteLength(text);
    for (const [way, n] of [['sent', after.written - before.written], ['received', after.read - before.read]]) {
      if (n > size / 4) throw new Error(`${size} bytes of JSON took ${n} bytes ${way} on the wire`);
    }
    await c.close();
  });

  scenario('deflate: 1 MiB of text and of binary shrink on the wire', async (ctx) => {
    const c = await ctx.open();
    const bin = Buffer.alloc(1 << 20);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 7) % 251;
    for (const [payload, isBinary] of [[utf8Text(1 << 20), false], [bin, true]]) {
      const before = wire(c);
      await echoOnce(c, payload, isBinary);
      const n = wire(c).read - before.read;
      if (n > 64 * 1024) throw new Error(`the echo of a compressible 1 MiB message took ${n} bytes on the wire`);
    }
    await c.close();
  });

  scenario('deflate: 1000 similar messages on one connection, in order', async (ctx) => {
    const c = await ctx.open();
    const sent = [];
    for (let i = 0; i < 1000; i++) {
      const isBinary = i % 5 === 4;
      const data = Buffer.from(record(i), 'utf8');
      sent.push({ data, isBinary });
      c.ws.send(data, { binary: isBinary });
    }
    const before = wire(c);
    for (let i = 0; i < sent.length; i++) {
      expectMessage(await c.next(), sent[i].data, sent[i].isBinary, `message #${i}`);
    }
    const got = wire(c).read - before.read;
    // What the echoes would take compressed one by one (no context takeover), as zlib does it at
    // our server's level 6, with 2 bytes of frame header each.
    let alone = 0;
    for (const { data } of sent) {
      alone += zlib.deflateRawSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).length - 4 + 2;
    }
    // The server's context takeover (dedicated mode) lets each message refer to the ones before.
    if (deflateMode === 'dedicated' && got > alone / 2) {
      throw new Error(`the echoes took ${got} bytes, ${alone} one by one: no sign of context takeover`);
    }
    await c.close();
    return `${got} bytes for the echoes, ${alone} compressed one by one`;
  });
}

// ------------------------------------------------------------------ runner

async function run() {
  let passed = 0;
  let failed = 0;
  for (const { name, fn } of scenarios) {
    const ctx = new Ctx();
    let timer;
    try {
      const note = await Promise.race([
        fn(ctx),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
        }),
      ]);
      passed++;
      process.stdout.write(`PASS ${name}${note ? ` (${note})` : ''}\n`);
    } catch (err) {
      failed++;
      const why = String(err && err.message ? err.message : err).replace(/\s+/g, ' ');
      process.stdout.write(`FAIL ${name}: ${why}\n`);
    } finally {
      clearTimeout(timer);
      ctx.cleanup();
    }
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed === 0 ? 0 : 1);
}

run();
