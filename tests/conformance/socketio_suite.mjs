// Byte-level Socket.IO v5 (over Engine.IO v4) conformance suite.
//
// Usage (from the repository root, so that `ws` resolves from node_modules):
//   node tests/conformance/socketio_suite.mjs http://127.0.0.1:PORT
//
// The server under test serves Socket.IO at /socket.io/ with pingInterval 300 ms, pingTimeout
// 200 ms, maxPayload 1000000, connectTimeout 1000 ms; namespaces "/" and "/custom" emit "auth"
// with the CONNECT payload on connection, answer "message" with "message-back" (same arguments)
// and acknowledge "message-with-ack" with its arguments. tests/conformance/socketio_node_reference.mjs
// is the Node implementation this suite is validated against.
//
// Prints "ok NAME" or "FAIL NAME: why" per check, then "N passed, N failed"; exit status 0 iff
// every check passed. Frames are compared as exact bytes. Every wait has a deadline.
import WebSocket from 'ws';

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const CONNECT_TIMEOUT = 1000;
const MAX_PAYLOAD = 1000000;
// Upper bounds only (a passing run never waits them out), wide enough for a sanitized server on
// a loaded machine; the lower bounds on the protocol's timers are checked exactly.
const HEARTBEAT_SLACK = 400;  // a ping may come this late after pingInterval
const WAIT_MS = 3000;        // deadline for a frame we expect now
const CLOSE_MS = 1500;       // deadline for a close caused by a protocol violation
const CHECK_MS = 12000;      // deadline for a whole check
const RUN_MS = 90000;        // deadline for the whole run

if (process.argv.length !== 3 || !/^https?:\/\/[^/]+\/?$/.test(process.argv[2])) {
  process.stderr.write('usage: node socketio_suite.mjs http://HOST:PORT\n');
  process.exit(2);
}
const HTTP_BASE = process.argv[2].replace(/\/$/, '');
const WS_BASE = HTTP_BASE.replace(/^http/, 'ws');
const WS_URL = `${WS_BASE}/socket.io/?EIO=4&transport=websocket`;
const POLL_URL = `${HTTP_BASE}/socket.io/?EIO=4&transport=polling`;

const SID_RE = /^[A-Za-z0-9_-]{20}$/;
const ph = (n) => `{"_placeholder":true,"num":${n}}`;
const now = () => performance.now();

function show(frame) {
  if (frame === undefined) return 'nothing';
  if (frame.bin) return `binary <${frame.bin.toString('hex')}>`;
  return JSON.stringify(frame.text);
}

// ---- WebSocket client that queues every frame ----
// The server may write several Engine.IO packets in one TCP segment; `ws` then emits them
// synchronously one after the other, so frames are queued on arrival and handed out in order.
class Conn {
  constructor(url = WS_URL) {
    this.queue = [];
    this.wake = null;
    this.closed = false;
    this.closedAt = 0;
    this.closeCode = 0;
    this.pings = 0;
    this.ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: WAIT_MS });
    this.ws.on('message', (data, isBinary) => {
      const at = now();
      this.queue.push(isBinary ? { bin: Buffer.from(data), at } : { text: data.toString('utf8'), at });
      this.notify();
    });
    this.ws.on('close', (code) => {
      this.closed = true;
      this.closedAt = now();
      this.closeCode = code;
      this.notify();
    });
    this.ws.on('error', (err) => {
      this.error = err;  // 'close' follows
    });
  }

  notify() {
    const w = this.wake;
    this.wake = null;
    if (w) w();
  }

  // Resolves on the next event (frame or close) or after `ms`.
  idle(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.wake = null; resolve(); }, Math.max(0, ms));
      this.wake = () => { clearTimeout(timer); resolve(); };
    });
  }

  send(data) {
    if (this.ws.readyState !== WebSocket.OPEN) throw new Error(`cannot send ${JSON.stringify(String(data))}: connection not open`);
    this.ws.send(data);
  }

  sendBinary(bytes) {
    if (this.ws.readyState !== WebSocket.OPEN) throw new Error('cannot send binary: connection not open');
    this.ws.send(Buffer.from(bytes), { binary: true });
  }

  // Next frame. With `pongs` (default), Engine.IO pings are answered with "3" and skipped.
  async next(what, { ms = WAIT_MS, pongs = true } = {}) {
    const deadline = now() + ms;
    for (;;) {
      while (this.queue.length) {
        const f = this.queue.shift();
        if (pongs && f.text === '2') {
          this.pings++;
          if (this.ws.readyState === WebSocket.OPEN) this.ws.send('3');
          continue;
        }
        return f;
      }
      if (this.closed) throw new Error(`connection closed (code ${this.closeCode}) while waiting for ${what}`);
      const left = deadline - now();
      if (left <= 0) throw new Error(`no frame within ${Math.round(ms)} ms while waiting for ${what}`);
      await this.idle(left);
    }
  }

  async expectText(want, opts) {
    const f = await this.next(JSON.stringify(want), opts);
    if (f.text !== want) throw new Error(`got ${show(f)}, want ${JSON.stringify(want)}`);
    return f;
  }

  async expectBinary(bytes, opts) {
    const want = Buffer.from(bytes);
    const f = await this.next(`binary <${want.toString('hex')}>`, opts);
    if (!f.bin || !f.bin.equals(want)) throw new Error(`got ${show(f)}, want binary <${want.toString('hex')}>`);
    return f;
  }

  // Waits for the connection to close, answering pings meanwhile (so a heartbeat timeout cannot
  // pass for the close being checked). Other frames are ignored. Returns the close time.
  async expectClose(why, ms = CLOSE_MS) {
    const deadline = now() + ms;
    const extra = [];
    for (;;) {
      while (this.queue.length) {
        const f = this.queue.shift();
        if (f.text === '2') {
          this.pings++;
          if (this.ws.readyState === WebSocket.OPEN) this.ws.send('3');
        } else if (extra.length < 3) {
          extra.push(show(f));
        }
      }
      if (this.closed) return this.closedAt;
      const left = deadline - now();
      if (left <= 0) {
        const seen = extra.length ? ` (received ${extra.join(', ')})` : '';
        throw new Error(`connection still open ${ms} ms after ${why}${seen}`);
      }
      await this.idle(left);
    }
  }

  // Keeps the connection alive for `ms` (answering pings); fails if it closes or a non-ping
  // frame arrives.
  async stayOpen(ms, why) {
    const deadline = now() + ms;
    for (;;) {
      const left = deadline - now();
      if (left <= 0) return;
      let f;
      try {
        f = await this.next('nothing', { ms: left });
      } catch (e) {
        if (this.closed) throw new Error(`connection closed (code ${this.closeCode}) ${why}`);
        return;  // deadline reached with nothing but pings
      }
      throw new Error(`unexpected frame ${show(f)} ${why}`);
    }
  }

  terminate() {
    try { this.ws.terminate(); } catch { /* already gone */ }
  }
}

// ---- per-check bookkeeping ----
let current = null;  // connections opened by the running check, closed when it ends

// Checks an Engine.IO open packet (the JSON after "0") against the advertised settings.
function checkOpenPacket(text, upgrades) {
  const open = JSON.parse(text.slice(1));
  const keys = Object.keys(open).join(',');
  if (keys !== 'sid,upgrades,pingInterval,pingTimeout,maxPayload') throw new Error(`open packet keys ${keys}, want sid,upgrades,pingInterval,pingTimeout,maxPayload`);
  if (!SID_RE.test(String(open.sid))) throw new Error(`engine sid ${JSON.stringify(open.sid)}, want 20 base64url chars`);
  if (JSON.stringify(open.upgrades) !== upgrades) throw new Error(`upgrades ${JSON.stringify(open.upgrades)}, want ${upgrades}`);
  if (open.pingInterval !== PING_INTERVAL || open.pingTimeout !== PING_TIMEOUT || open.maxPayload !== MAX_PAYLOAD) {
    throw new Error(`open packet ${text} (want pingInterval ${PING_INTERVAL}, pingTimeout ${PING_TIMEOUT}, maxPayload ${MAX_PAYLOAD})`);
  }
}

// Opens an Engine.IO session over WebSocket. Only the sid is needed here; the open packet's
// contents have their own check, so that one wrong field does not fail every check.
async function openEngine() {
  const c = new Conn();
  current.push(c);
  const f = await c.next('the Engine.IO open packet', { pongs: false });
  c.openedAt = f.at;
  c.openText = f.text;
  if (!f.text || f.text[0] !== '0') throw new Error(`first frame ${show(f)} is not an open packet`);
  let open;
  try {
    open = JSON.parse(f.text.slice(1));
  } catch {
    throw new Error(`open packet ${show(f)} is not JSON`);
  }
  if (typeof open.sid !== 'string' || open.sid === '') throw new Error(`open packet ${show(f)} has no sid`);
  c.engineSid = open.sid;
  return c;
}

// Sends CONNECT for `nsp` ("/" or "/custom") with an optional raw auth JSON text, checks the
// reply and the "auth" event; returns the socket id.
async function connectNs(c, nsp = '/', auth = '', expectAuth = auth || '{}') {
  const prefix = nsp === '/' ? '' : `${nsp},`;
  c.send(`40${prefix}${auth}`);
  const f = await c.next(`the CONNECT reply for ${nsp}`);
  const head = `40${prefix}`;
  if (!f.text || !f.text.startsWith(head)) throw new Error(`CONNECT reply ${show(f)}, want ${head}{"sid":...}`);
  let body;
  try {
    body = JSON.parse(f.text.slice(head.length));
  } catch {
    throw new Error(`CONNECT reply ${show(f)} has no JSON object`);
  }
  if (Object.keys(body).join(',') !== 'sid' || !SID_RE.test(String(body.sid)) || f.text !== `${head}{"sid":"${body.sid}"}`) {
    throw new Error(`CONNECT reply ${show(f)}, want exactly ${head}{"sid":"<20 base64url chars>"}`);
  }
  if (body.sid === c.engineSid) throw new Error(`socket sid ${body.sid} equals the Engine.IO sid`);
  await c.expectText(`42${prefix}["auth",${expectAuth}]`);
  return body.sid;
}

async function connected(nsp = '/') {
  const c = await openEngine();
  c.socketSid = await connectNs(c, nsp);
  return c;
}

// A protocol violation after connecting "/" must close the Engine.IO connection.
async function closesAfter(frames, { connect = true } = {}) {
  const c = connect ? await connected() : await openEngine();
  for (const f of frames) {
    if (typeof f === 'string') c.send(f);
    else c.sendBinary(f);
  }
  const what = frames.map((f) => (typeof f === 'string' ? JSON.stringify(f) : `binary <${Buffer.from(f).toString('hex')}>`)).join(' + ');
  const sentAt = now();
  const at = await c.expectClose(`sending ${what}`);
  if (!connect && at - c.openedAt >= CONNECT_TIMEOUT - 100) {
    throw new Error(`closed only after ${Math.round(at - c.openedAt)} ms (looks like the connect timeout, not the violation)`);
  }
  return at - sentAt;
}

// An echo on "/" still works (the connection and the main-namespace socket are alive).
async function echoWorks(c, arg = '"still here"') {
  c.send(`42["message",${arg}]`);
  await c.expectText(`42["message-back",${arg}]`);
}

// ---- HTTP long-polling client ----
class Poll {
  async handshake() {
    const res = await fetch(POLL_URL, { signal: AbortSignal.timeout(WAIT_MS) });
    const body = await res.text();
    if (res.status !== 200) throw new Error(`handshake GET status ${res.status} ${JSON.stringify(body)}`);
    const packets = body.split('\x1e');
    if (packets[0][0] !== '0') throw new Error(`handshake body ${JSON.stringify(body)} is not an open packet`);
    let open;
    try {
      open = JSON.parse(packets[0].slice(1));
    } catch {
      throw new Error(`open packet ${JSON.stringify(packets[0])} is not JSON`);
    }
    if (typeof open.sid !== 'string' || open.sid === '') throw new Error(`open packet ${JSON.stringify(packets[0])} has no sid`);
    this.openText = packets[0];
    this.sid = open.sid;
    this.url = `${POLL_URL}&sid=${encodeURIComponent(open.sid)}`;
    this.queue = packets.slice(1);
    return open;
  }

  async post(body) {
    const res = await fetch(this.url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
      signal: AbortSignal.timeout(WAIT_MS),
    });
    const text = await res.text();
    if (res.status !== 200 || text !== 'ok') throw new Error(`POST ${JSON.stringify(body)} answered ${res.status} ${JSON.stringify(text)}, want 200 "ok"`);
  }

  async get(ms) {
    const res = await fetch(this.url, { signal: AbortSignal.timeout(Math.max(1, Math.ceil(ms))) });
    return { status: res.status, body: await res.text() };
  }

  // Next packet (pings answered with a POST "3" and skipped).
  async next(what, ms = WAIT_MS) {
    const deadline = now() + ms;
    for (;;) {
      while (this.queue.length) {
        const p = this.queue.shift();
        if (p === '2') {
          await this.post('3');
          continue;
        }
        return p;
      }
      const left = deadline - now();
      if (left <= 0) throw new Error(`no packet within ${Math.round(ms)} ms while waiting for ${what}`);
      let r;
      try {
        r = await this.get(left);
      } catch (e) {
        throw new Error(`GET failed while waiting for ${what}: ${e.name === 'TimeoutError' ? 'timeout' : e.message}`);
      }
      if (r.status !== 200) throw new Error(`GET answered ${r.status} ${JSON.stringify(r.body)} while waiting for ${what}`);
      this.queue.push(...r.body.split('\x1e'));
    }
  }

  async expect(want) {
    const p = await this.next(JSON.stringify(want));
    if (p !== want) throw new Error(`got ${JSON.stringify(p)}, want ${JSON.stringify(want)}`);
  }

  // The session must be gone: a GET answers 400, possibly after one carrying the close packet.
  async expectGone(why, ms = CLOSE_MS * 2) {
    const deadline = now() + ms;
    for (;;) {
      const left = deadline - now();
      if (left <= 0) throw new Error(`session still alive ${ms} ms after ${why}`);
      let r;
      try {
        r = await this.get(left);
      } catch {
        throw new Error(`session still alive ${ms} ms after ${why} (GET pending)`);
      }
      if (r.status === 400) return;
      if (r.status !== 200) throw new Error(`GET answered ${r.status} ${JSON.stringify(r.body)} after ${why}`);
      const packets = r.body.split('\x1e');
      if (packets.includes('2')) await this.post('3').catch(() => {});
    }
  }

  async close() {
    if (!this.url) return;
    await fetch(this.url, { method: 'POST', body: '1', signal: AbortSignal.timeout(WAIT_MS) }).catch(() => {});
  }
}

// ---- the checks ----
const checks = [];
const check = (name, fn) => checks.push({ name, fn });

// Engine.IO open packet
check('open packet over websocket - sid, upgrades [], pingInterval 300, pingTimeout 200, maxPayload 1000000', async () => {
  const c = await openEngine();
  checkOpenPacket(c.openText, '[]');
});

check('open packet over polling - upgrades ["websocket"], same settings', async () => {
  const p = new Poll();
  current.push(p);
  await p.handshake();
  checkOpenPacket(p.openText, '["websocket"]');
});

// Connecting to namespaces
check('connect / - 40 -> 40{"sid"} then 42["auth",{}]', async () => {
  await connected('/');
});

check('connect / with auth - 40{"token":"123"} -> 42["auth",{"token":"123"}]', async () => {
  const c = await openEngine();
  await connectNs(c, '/', '{"token":"123"}');
});

check('connect /custom - 40/custom, -> 40/custom,{"sid"} then 42/custom,["auth",{}]', async () => {
  await connected('/custom');
});

check('connect /custom with auth - 40/custom,{"token":"abc"}', async () => {
  const c = await openEngine();
  await connectNs(c, '/custom', '{"token":"abc"}');
});

check('connect /custom without the comma - 40/custom', async () => {
  const c = await openEngine();
  c.send('40/custom');
  const f = await c.next('the CONNECT reply');
  if (!f.text || !/^40\/custom,\{"sid":"[A-Za-z0-9_-]{20}"\}$/.test(f.text)) throw new Error(`got ${show(f)}, want 40/custom,{"sid":...}`);
  await c.expectText('42/custom,["auth",{}]');
});

check('connect / and /custom on one connection - distinct socket ids', async () => {
  const c = await openEngine();
  const a = await connectNs(c, '/');
  const b = await connectNs(c, '/custom');
  if (a === b) throw new Error(`both namespaces got socket id ${a}`);
});

check('auth payload echoed verbatim - 40{"a":[1,{"b":null}],"c":"\\u00e9"}', async () => {
  const c = await openEngine();
  await connectNs(c, '/', '{"a":[1,{"b":null}],"c":"\\u00e9"}', '{"a":[1,{"b":null}],"c":"é"}');
});

check('unknown namespace - 40/random -> 44/random,{"message":"Invalid namespace"}, connection stays open', async () => {
  const c = await openEngine();
  c.send('40/random');
  await c.expectText('44/random,{"message":"Invalid namespace"}');
  const f = await c.next('a ping after the CONNECT_ERROR', { ms: PING_INTERVAL + 400, pongs: false });
  if (f.text !== '2') throw new Error(`got ${show(f)}, want the ping "2"`);
  c.send('3');
  await connectNs(c, '/');  // still within connectTimeout
});

check('unknown namespace with auth - 40/random,{"x":1} -> 44/random,{"message":"Invalid namespace"}', async () => {
  const c = await openEngine();
  c.send('40/random,{"x":1}');
  await c.expectText('44/random,{"message":"Invalid namespace"}');
  await connectNs(c, '/');
});

check('connect timeout - no CONNECT within 1000 ms closes the connection', async () => {
  const c = await openEngine();
  const at = await c.expectClose('the connect timeout', CONNECT_TIMEOUT + CLOSE_MS);
  const t = at - c.openedAt;
  if (t < CONNECT_TIMEOUT - 100) throw new Error(`closed after ${Math.round(t)} ms, before the connect timeout`);
});

check('connect timeout does not apply once a namespace is joined', async () => {
  const c = await connected();
  await c.stayOpen(CONNECT_TIMEOUT + 300, 'within 1300 ms of joining /');
  await echoWorks(c);
});

// Events and acks
check('echo - 42["message",1,"2",{"3":[true]}] -> 42["message-back",1,"2",{"3":[true]}]', async () => {
  const c = await connected();
  c.send('42["message",1,"2",{"3":[true]}]');
  await c.expectText('42["message-back",1,"2",{"3":[true]}]');
});

check('ack - 42456["message-with-ack",1,"2",{"3":[true]}] -> 43456[1,"2",{"3":[true]}]', async () => {
  const c = await connected();
  c.send('42456["message-with-ack",1,"2",{"3":[true]}]');
  await c.expectText('43456[1,"2",{"3":[true]}]');
});

check('ack id 0 and empty args - 420["message-with-ack"] -> 430[]', async () => {
  const c = await connected();
  c.send('420["message-with-ack"]');
  await c.expectText('430[]');
});

check('events keep their order - 3 echoes in a row', async () => {
  const c = await connected();
  for (const i of [1, 2, 3]) c.send(`42["message",${i}]`);
  for (const i of [1, 2, 3]) await c.expectText(`42["message-back",${i}]`);
});

check('echo on /custom - 42/custom,["message",...] -> 42/custom,["message-back",...]', async () => {
  const c = await connected('/custom');
  c.send('42/custom,["message",1,"2",{"3":[true]}]');
  await c.expectText('42/custom,["message-back",1,"2",{"3":[true]}]');
});

check('ack on /custom - 42/custom,7["message-with-ack",...] -> 43/custom,7[...]', async () => {
  const c = await connected('/custom');
  c.send('42/custom,7["message-with-ack",1,"2",{"3":[true]}]');
  await c.expectText('43/custom,7[1,"2",{"3":[true]}]');
});

// Object keys are not compared in order: Node keeps insertion order, gateway.hpp's JSON (nlohmann)
// sorts them; JSON says an object is unordered, and no client reads the order.
check('echo JSON re-serialised as JSON.stringify does (escapes, numbers)', async () => {
  const c = await connected();
  const args = '"\\u00e9\\ud83d\\ude00\\u2028\\/\\"\\\\\\u0008\\u000c\\n\\u001f\\u007f",1.50,1E21,1e-7,0.1,100,{"a":[],"b":1}';
  const want = `42${JSON.stringify(['message-back', ...JSON.parse(`[${args}]`)])}`;
  c.send(`42["message",${args}]`);
  await c.expectText(want);
});

check('numeric event name is accepted - 42[1,"x"] does not close', async () => {
  const c = await connected();
  c.send('42[1,"x"]');
  await echoWorks(c);
});

check('ACK with an unknown id is ignored - 43999[] does not close', async () => {
  const c = await connected();
  c.send('43999[]');
  await echoWorks(c);
});

// Binary attachments
check('binary echo - 452-["message",<ph0>,<ph1>] + 2 binaries -> 452-["message-back",...] + the same binaries', async () => {
  const c = await connected();
  c.send(`452-["message",${ph(0)},${ph(1)}]`);
  c.sendBinary([1, 2, 3]);
  c.sendBinary([4, 5, 6]);
  await c.expectText(`452-["message-back",${ph(0)},${ph(1)}]`);
  await c.expectBinary([1, 2, 3]);
  await c.expectBinary([4, 5, 6]);
});

check('binary ack - 452-789["message-with-ack",<ph0>,<ph1>] + 2 binaries -> 462-789[<ph0>,<ph1>] + binaries', async () => {
  const c = await connected();
  c.send(`452-789["message-with-ack",${ph(0)},${ph(1)}]`);
  c.sendBinary([1, 2, 3]);
  c.sendBinary([4, 5, 6]);
  await c.expectText(`462-789[${ph(0)},${ph(1)}]`);
  await c.expectBinary([1, 2, 3]);
  await c.expectBinary([4, 5, 6]);
});

check('binary echo on /custom - 452-/custom,[...] -> 452-/custom,["message-back",...]', async () => {
  const c = await connected('/custom');
  c.send(`452-/custom,["message",${ph(0)},${ph(1)}]`);
  c.sendBinary([1, 2, 3]);
  c.sendBinary([4, 5, 6]);
  await c.expectText(`452-/custom,["message-back",${ph(0)},${ph(1)}]`);
  await c.expectBinary([1, 2, 3]);
  await c.expectBinary([4, 5, 6]);
});

check('binary placeholders renumbered depth-first - {"a":<ph1>,"b":[<ph0>]}', async () => {
  const c = await connected();
  c.send(`452-["message",{"a":${ph(1)},"b":[${ph(0)}]}]`);
  c.sendBinary([0xaa]);
  c.sendBinary([0xbb]);
  await c.expectText(`452-["message-back",{"a":${ph(0)},"b":[${ph(1)}]}]`);
  await c.expectBinary([0xbb]);
  await c.expectBinary([0xaa]);
});

check('binary - an empty attachment round-trips', async () => {
  const c = await connected();
  c.send(`451-["message",${ph(0)}]`);
  c.sendBinary([]);
  await c.expectText(`451-["message-back",${ph(0)}]`);
  await c.expectBinary([]);
});

check('binary - 10 attachments (the limit) are accepted', async () => {
  const c = await connected();
  const n = 10;
  c.send(`45${n}-["message",${Array.from({ length: n }, (_, i) => ph(i)).join(',')}]`);
  for (let i = 0; i < n; i++) c.sendBinary([i]);
  await c.expectText(`45${n}-["message-back",${Array.from({ length: n }, (_, i) => ph(i)).join(',')}]`);
  for (let i = 0; i < n; i++) await c.expectBinary([i]);
});

// Protocol violations close the connection
const violations = [
  ['unknown packet type - 4abc', ['4abc']],
  ['unknown packet type digit - 49', ['49']],
  ['EVENT payload is an object - 42{}', ['42{}']],
  ['EVENT payload is an object - 42{"a":1}', ['42{"a":1}']],
  ['junk before the payload - 42abc["message"]', ['42abc["message"]']],
  ['truncated JSON - 42["message"', ['42["message"']],
  ['EVENT with an empty array - 42[]', ['42[]']],
  ['EVENT name is not a string or number - 42[{}]', ['42[{}]']],
  ['EVENT name is null - 42[null,1]', ['42[null,1]']],
  ['ACK payload is not an array - 431{}', ['431{}']],
  ['DISCONNECT with a payload - 41{}', ['41{}']],
  ['second CONNECT for a connected namespace - 40', ['40']],
  ['CONNECT_ERROR from the client - 44{}', ['44{}']],
  ['CONNECT_ERROR from the client - 44{"message":"x"}', ['44{"message":"x"}']],
  ['EVENT for a namespace not connected - 42/custom,["message"]', ['42/custom,["message"]']],
  ['ACK for a namespace not connected - 43/custom,1[]', ['43/custom,1[]']],
  ['DISCONNECT for a namespace not connected - 41/custom,', ['41/custom,']],
  ...['disconnect', 'connect', 'connect_error', 'disconnecting', 'newListener', 'removeListener']
    .map((name) => [`reserved event name - 42["${name}"]`, [`42["${name}"]`]]),
  ['more than 10 attachments - 4511-[...]', [`4511-["message",${Array.from({ length: 11 }, (_, i) => ph(i)).join(',')}]`]],
  ['zero attachments - 450-["message"]', ['450-["message"]']],
  ['attachment count not a number - 45x-["message"]', ['45x-["message"]']],
  ['placeholder num out of range - 451-[..."num":1] + 1 binary', [`451-["message",${ph(1)}]`, [1]]],
  ['placeholder num negative - 451-[..."num":-1] + 1 binary', [`451-["message",${ph(-1)}]`, [1]]],
  ['placeholder num is a string - 451-[..."num":"0"] + 1 binary', ['451-["message",{"_placeholder":true,"num":"0"}]', [1]]],
  ['text frame while attachments are pending', [`451-["message",${ph(0)}]`, '42["message",1]']],
  ['binary frame when no attachment is expected', [[1, 2, 3]]],
];
for (const [name, frames] of violations) {
  check(`closes on ${name}`, async () => { await closesAfter(frames); });
}

check('closes on EVENT before any CONNECT - 42["message"] (well before connectTimeout)', async () => {
  await closesAfter(['42["message"]'], { connect: false });
});

check('closes on CONNECT whose payload is not an object - 40"x" (before connectTimeout)', async () => {
  await closesAfter(['40"x"'], { connect: false });
});

check('closes on CONNECT whose payload is an array - 40[] (before connectTimeout)', async () => {
  await closesAfter(['40[]'], { connect: false });
});

// Disconnect
check('41 - socket gone, Engine.IO stays open (next frame is the ping), reconnect gets a new sid', async () => {
  const c = await connected();
  c.send('41');
  const f = await c.next('the ping after 41', { ms: PING_INTERVAL + 400, pongs: false });
  if (f.text !== '2') throw new Error(`got ${show(f)}, want the ping "2" (nothing in reply to 41)`);
  c.send('3');
  const sid = await connectNs(c, '/');
  if (sid === c.socketSid) throw new Error(`reconnect reused socket id ${sid}`);
});

check('41/custom, - /custom gone, / still echoes, then an event on /custom closes', async () => {
  const c = await connected('/');
  await connectNs(c, '/custom');
  c.send('41/custom,');
  await echoWorks(c);
  c.send('42/custom,["message",1]');
  await c.expectClose('an event on the disconnected /custom');
});

check('41/custom without the comma then a main-namespace echo', async () => {
  const c = await connected('/');
  await connectNs(c, '/custom');
  c.send('41/custom');
  await echoWorks(c, '"message to main namespace"');
});

// Heartbeat
check('heartbeat over websocket - three ping/pong cycles ~300 ms apart', async () => {
  const c = await connected();
  let from = c.openedAt;
  for (let i = 0; i < 3; i++) {
    const f = await c.next(`ping ${i + 1}`, { ms: from + PING_INTERVAL + HEARTBEAT_SLACK - now(), pongs: false });
    if (f.text !== '2') throw new Error(`got ${show(f)}, want the ping "2"`);
    const gap = f.at - from;
    if (gap < PING_INTERVAL - 100) throw new Error(`ping ${i + 1} came ${Math.round(gap)} ms after the previous pong, want ~${PING_INTERVAL}`);
    c.send('3');
    from = now();
  }
  await echoWorks(c);
});

check('heartbeat - no pong closes the connection after pingTimeout', async () => {
  const c = await connected();
  const f = await c.next('the first ping', { ms: PING_INTERVAL + 400, pongs: false });
  if (f.text !== '2') throw new Error(`got ${show(f)}, want the ping "2"`);
  // Wait without answering.
  const deadline = f.at + PING_TIMEOUT + 500;
  while (!c.closed && now() < deadline) {
    const extra = c.queue.shift();
    if (extra) throw new Error(`unexpected ${show(extra)} while the pong is overdue`);
    await c.idle(deadline - now());
  }
  if (!c.closed) throw new Error(`still open ${PING_TIMEOUT + 500} ms after an unanswered ping`);
  const t = c.closedAt - f.at;
  if (t < PING_TIMEOUT - 50) throw new Error(`closed ${Math.round(t)} ms after the ping, before pingTimeout`);
});

// HTTP long-polling
check('polling - handshake, POST 40 -> 40{"sid"} and 42["auth",{}], echo', async () => {
  const p = new Poll();
  current.push(p);
  const open = await p.handshake();
  await p.post('40');
  const reply = await p.next('the CONNECT reply');
  const m = /^40\{"sid":"([A-Za-z0-9_-]{20})"\}$/.exec(reply);
  if (!m) throw new Error(`got ${JSON.stringify(reply)}, want 40{"sid":"<20 chars>"}`);
  if (m[1] === open.sid) throw new Error('socket sid equals the Engine.IO sid');
  await p.expect('42["auth",{}]');
  await p.post('42["message","x"]');
  await p.expect('42["message-back","x"]');
});

check('polling - two events in one POST are answered in order; ack', async () => {
  const p = new Poll();
  current.push(p);
  await p.handshake();
  await p.post('40{"token":"p"}');
  await p.next('the CONNECT reply');
  await p.expect('42["auth",{"token":"p"}]');
  await p.post('42["message","a"]\x1e42["message","b"]\x1e4212["message-with-ack",{"k":[1]}]');
  await p.expect('42["message-back","a"]');
  await p.expect('42["message-back","b"]');
  await p.expect('4312[{"k":[1]}]');
});

check('polling - binary echo with b<base64> attachments', async () => {
  const p = new Poll();
  current.push(p);
  await p.handshake();
  await p.post('40/custom,');
  await p.next('the CONNECT reply');
  await p.expect('42/custom,["auth",{}]');
  await p.post(`452-/custom,["message",${ph(0)},${ph(1)}]\x1ebAQID\x1ebBAUG`);
  await p.expect(`452-/custom,["message-back",${ph(0)},${ph(1)}]`);
  await p.expect('bAQID');
  await p.expect('bBAUG');
});

check('heartbeat over polling - three ping/pong cycles ~300 ms apart', async () => {
  const p = new Poll();
  current.push(p);
  await p.handshake();
  let from = now();
  for (let i = 0; i < 3; i++) {
    const r = await p.get(from + PING_INTERVAL + HEARTBEAT_SLACK - now()).catch(() => ({ status: 0, body: '' }));
    const gap = now() - from;
    if (r.status !== 200 || r.body !== '2') {
      throw new Error(`GET ${i + 1} answered ${r.status === 0 ? 'nothing in time' : `${r.status} ${JSON.stringify(r.body)}`}, want "2" within ${PING_INTERVAL + HEARTBEAT_SLACK} ms`);
    }
    if (gap < PING_INTERVAL - 100) throw new Error(`ping ${i + 1} came ${Math.round(gap)} ms after the previous pong, want ~${PING_INTERVAL}`);
    await p.post('3');
    from = now();
  }
});

check('polling - an invalid packet closes the session', async () => {
  const p = new Poll();
  current.push(p);
  await p.handshake();
  await p.post('40');
  await p.next('the CONNECT reply');
  await p.expect('42["auth",{}]');
  // The POST itself may be refused or accepted; what matters is that the session goes away.
  await fetch(p.url, { method: 'POST', body: '42{"a":1}', signal: AbortSignal.timeout(WAIT_MS) }).catch(() => {});
  await p.expectGone('POST 42{"a":1}');
});

// ---- runner ----
const watchdog = setTimeout(() => {
  console.log(`FAIL run: did not finish within ${RUN_MS} ms`);
  process.exit(1);
}, RUN_MS);

let passed = 0;
let failed = 0;
for (const { name, fn } of checks) {
  current = [];
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`check did not finish within ${CHECK_MS} ms`)), CHECK_MS); }),
    ]);
    console.log(`ok ${name}`);
    passed++;
  } catch (e) {
    console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
    failed++;
  } finally {
    clearTimeout(timer);
    for (const r of current) {
      if (r instanceof Conn) r.terminate();
      else await r.close();
    }
  }
}
clearTimeout(watchdog);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
