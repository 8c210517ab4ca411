// engineio_clients.mjs URL [--path PATH] [MODE...]
//
// Interop test: drives an Engine.IO v4 echo server (every message sent back as it came, text as
// text and binary as binary; pingInterval 300 ms, pingTimeout 200 ms (5 s with GW_TEST_PATIENT set): tests/conformance/
// engineio_echo.cpp or engineio_node_reference.mjs) with Node's engine.io-client (6.6).
//
//   URL     http://HOST:PORT
//   --path  the Engine.IO path (default /engine.io/)
//   MODE    polling   -> transports: ['polling'] (stays on long-polling)
//           websocket -> transports: ['websocket'] (WebSocket from the start)
//           upgrade   -> the default: polling, then the client probes and upgrades to WebSocket;
//                        also checks the 'upgrade' event and that messages sent before, during
//                        and after the upgrade all come back exactly once, in order
//           (default: all three, in that order)
//
// Prints one line per scenario, "PASS name" or "FAIL name: why", then "N passed, M failed"; exit
// status 0 iff nothing failed. Each scenario has a time limit (INTEROP_TIMEOUT_MS, default
// 10000 ms); running over it is a failure. INTEROP_DEBUG=1 logs every packet to stderr.
import process from 'node:process';
import { Socket } from 'engine.io-client';

function usage(msg) {
  if (msg) process.stderr.write(`engineio_clients.mjs: ${msg}\n`);
  process.stderr.write('usage: node engineio_clients.mjs URL [--path PATH] [polling|websocket|upgrade ...]\n');
  process.exit(2);
}

const MODES = ['polling', 'websocket', 'upgrade'];
let url = null;
let path = '/engine.io/';
const modes = [];
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--path') {
      if (i + 1 >= argv.length) usage('--path needs a value');
      path = argv[++i];
    } else if (url === null) {
      url = argv[i];
    } else if (MODES.includes(argv[i])) {
      modes.push(argv[i]);
    } else {
      usage(`unexpected argument ${argv[i]}`);
    }
  }
}
if (!url || !/^https?:\/\//i.test(url)) usage('URL must start with http:// or https://');
if (modes.length === 0) modes.push(...MODES);

const TIMEOUT_MS = Number(process.env.INTEROP_TIMEOUT_MS) || 10000;
const WAIT_MS = Math.min(5000, TIMEOUT_MS / 2);   // one expected message / event
const DEBUG = !['', '0', undefined].includes(process.env.INTEROP_DEBUG);
const t0 = Date.now();

// A stray rejection from an abandoned (timed-out) scenario must not kill the run.
process.on('unhandledRejection', () => {});

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Binary data as a Uint8Array (Node hands out Buffers), anything else unchanged. */
function bytesOf(m) {
  if (m instanceof ArrayBuffer) return new Uint8Array(m);
  if (ArrayBuffer.isView(m)) return new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
  return null;
}

function describe(m) {
  if (typeof m === 'string') {
    const head = JSON.stringify(m.slice(0, 40)) + (m.length > 40 ? '...' : '');
    return `text ${head} (${Buffer.byteLength(m)} bytes)`;
  }
  const b = bytesOf(m);
  if (b) return `binary ${Buffer.from(b.subarray(0, 16)).toString('hex')}${b.length > 16 ? '...' : ''} (${b.length} bytes)`;
  return `${typeof m} ${String(m)}`;
}

function same(got, want) {
  if (typeof want === 'string') return got === want;
  const a = bytesOf(got);
  const b = bytesOf(want);
  return a !== null && b !== null && a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

function expect(got, want, what = 'echo') {
  if (!same(got, want)) throw new Error(`${what}: expected ${describe(want)}, got ${describe(got)}`);
}

function patternBytes(n, seed = 0) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 7 + (i >> 8) * 17) & 0xff;
  return b;
}

function utf8Text(n) {
  const unit = 'aé€😀';   // 1 + 2 + 3 + 4 bytes
  return unit.repeat(Math.floor(n / 10)) + 'a'.repeat(n % 10);
}

/** An engine.io-client Socket with an awaitable inbox and a record of what happened to it. */
class Client {
  constructor(mode, extra = {}) {
    this.mode = mode;
    const opts = { path, reconnection: false, ...extra };
    if (mode === 'polling') opts.transports = ['polling'];
    else if (mode === 'websocket') opts.transports = ['websocket'];
    this.socket = new Socket(url, opts);
    this.inbox = [];
    this.waiters = [];
    this.errors = [];
    this.closeInfo = null;
    this.pings = 0;
    this.upgrades = [];
    const s = this.socket;
    s.on('message', (m) => {
      if (this.waiters.length) this.waiters.shift().resolve(m);
      else this.inbox.push(m);
    });
    s.on('ping', () => { this.pings++; });
    s.on('upgrade', (t) => { this.upgrades.push(t.name); });
    s.on('error', (e) => { this.errors.push(e); });
    s.on('close', (reason, desc) => {
      this.closeInfo = { reason, desc };
      for (const w of this.waiters.splice(0)) w.reject(new Error(`closed (${this.closeReason()}) while waiting for a message`));
    });
    if (DEBUG) {
      s.on('packet', (p) => process.stderr.write(`${Date.now() - t0} [${mode}] < ${p.type} ${describe(p.data ?? '')}\n`));
      s.on('packetCreate', (p) => process.stderr.write(`${Date.now() - t0} [${mode}] > ${p.type} ${describe(p.data ?? '')}\n`));
      s.on('upgrading', () => process.stderr.write(`${Date.now() - t0} [${mode}] upgrading\n`));
      s.on('upgrade', () => process.stderr.write(`${Date.now() - t0} [${mode}] upgrade\n`));
      s.on('upgradeError', (e) => process.stderr.write(`${Date.now() - t0} [${mode}] upgradeError ${e.message}\n`));
    }
    this.opened = new Promise((resolve, reject) => {
      s.once('open', resolve);
      s.once('close', (reason, desc) => reject(new Error(`closed before opening: ${reason}${desc ? ` (${describeError(desc)})` : ''}`)));
    });
  }

  closeReason() {
    if (!this.closeInfo) return 'open';
    const { reason, desc } = this.closeInfo;
    return reason + (desc ? ` (${describeError(desc)})` : '');
  }

  /** Resolves once open (and, in the upgrade mode, once upgraded); checks the transport. */
  async open() {
    await within(this.opened, WAIT_MS, 'the handshake');
    if (this.mode === 'upgrade') await this.upgraded();
    const want = this.mode === 'polling' ? 'polling' : 'websocket';
    if (this.socket.transport.name !== want) throw new Error(`on ${this.socket.transport.name}, expected ${want}`);
    return this;
  }

  upgraded() {
    if (this.upgrades.length) return Promise.resolve();
    return within(new Promise((resolve, reject) => {
      this.socket.once('upgrade', resolve);
      this.socket.once('upgradeError', (e) => reject(new Error(`upgradeError: ${e.message}`)));
      this.socket.once('close', () => reject(new Error(`closed (${this.closeReason()}) before upgrading`)));
    }), WAIT_MS, "the 'upgrade' event");
  }

  next(what = 'a message', ms = WAIT_MS) {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    if (this.closeInfo) return Promise.reject(new Error(`closed (${this.closeReason()}) while waiting for ${what}`));
    return within(new Promise((resolve, reject) => this.waiters.push({ resolve, reject })), ms, what, () => {
      this.waiters.shift();
    });
  }

  async nothingMore(ms = 300) {
    await sleep(ms);
    if (this.inbox.length) throw new Error(`an extra message came back: ${describe(this.inbox[0])}`);
  }

  async echo(m) {
    this.socket.send(m);
    expect(await this.next(`the echo of ${describe(m)}`), m);
  }

  /** socket.close(): the 'close' event with "forced close", and no error on the way. */
  async closeCleanly() {
    const sid = this.socket.id;
    const closed = new Promise((resolve) => {
      if (this.closeInfo) resolve();
      else this.socket.once('close', resolve);
    });
    this.socket.close();
    await within(closed, WAIT_MS, "the 'close' event after close()");
    if (this.closeInfo.reason !== 'forced close') throw new Error(`closed with ${this.closeReason()}, expected "forced close"`);
    if (this.errors.length) throw new Error(`'error' event(s): ${this.errors.map(describeError).join('; ')}`);
    return sid;
  }

  abort() {
    if (!this.closeInfo) this.socket.close();
  }
}

function describeError(e) {
  if (e instanceof Error) return e.message + (e.description !== undefined ? ` [${describeError(e.description)}]` : '');
  if (e && typeof e === 'object') {
    if (e.message) return String(e.message);
    if (e.type) return String(e.type);
    try { return JSON.stringify(e); } catch { return String(e); }
  }
  return String(e);
}

function within(promise, ms, what, onTimeout) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        if (onTimeout) onTimeout();
        reject(new Error(`no ${what} within ${ms} ms`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Asks the server about a polling session it should have forgotten: expects 400 {"code":1}. */
async function sessionGone(sid) {
  const u = new URL(path, url);
  u.search = `EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
  let last = '';
  // Retried until a deadline: the close may take the server a while to handle.
  for (const end = Date.now() + WAIT_MS; Date.now() < end;) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 1000);
    try {
      const r = await fetch(u, { signal: ctl.signal });
      const body = await r.text();
      if (r.status === 400 && /"code"\s*:\s*1\b/.test(body)) return;
      last = `${r.status} ${body.slice(0, 80)}`;
    } catch (e) {
      last = e.name === 'AbortError' ? 'a GET held for 1 s (the session is still there)' : e.message;
    } finally {
      clearTimeout(timer);
    }
    await sleep(100);
  }
  throw new Error(`the server still knows session ${sid} after close(): GET with its sid -> ${last}`);
}

// ---------------------------------------------------------------- scenarios

const scenarios = [];
const scenario = (name, fn, only) => scenarios.push({ name, fn, only });

scenario('handshake: sid, transport, upgrade where expected', async (ctx, mode) => {
  const c = await ctx.open(mode);
  if (typeof c.socket.id !== 'string' || !c.socket.id) throw new Error(`sid ${c.socket.id}`);
  if (mode === 'upgrade' && c.upgrades.join() !== 'websocket') throw new Error(`'upgrade' events: [${c.upgrades}]`);
  if (mode !== 'upgrade' && c.upgrades.length) throw new Error(`unexpected 'upgrade' to ${c.upgrades}`);
  await c.echo('hello');
  await c.closeCleanly();
});

scenario('text echo (ASCII, multi-byte UTF-8, emoji, empty)', async (ctx, mode) => {
  const c = await ctx.open(mode);
  for (const s of ['Hello, gateway!', 'héllo wörld', '日本語のテキスト', '😀🎉🚀 emoji 👍🏽', '\u2028\u2029', '{"looks":"like json"}']) {
    await c.echo(s);
  }
  // An empty text message is the bare packet "4", which engine.io-parser hands out as undefined.
  c.socket.send('');
  const empty = await c.next('the echo of an empty text message');
  if (empty !== undefined && empty !== '') throw new Error(`echo of an empty text message: got ${describe(empty)}`);
  await c.echo('after the empty one');
  await c.closeCleanly();
});

scenario('binary echo (Uint8Array: all 256 byte values, one byte, empty)', async (ctx, mode) => {
  const c = await ctx.open(mode);
  const all = new Uint8Array(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  await c.echo(all);
  await c.echo(all.slice().reverse());
  await c.echo(new Uint8Array([0]));
  await c.echo(new Uint8Array(0));
  await c.echo('text after binary');
  await c.closeCleanly();
});

scenario('200 KB text and 200 KB binary round trip', async (ctx, mode) => {
  const c = await ctx.open(mode);
  await c.echo(utf8Text(200 * 1024));
  await c.echo(patternBytes(200 * 1024, 5));
  await c.closeCleanly();
});

scenario('50 messages in a row come back in order, exactly once', async (ctx, mode) => {
  const c = await ctx.open(mode);
  const sent = [];
  for (let i = 0; i < 50; i++) sent.push(i % 3 ? `message #${i} ✓` : patternBytes(1 + i * 7, i));
  for (const m of sent) c.socket.send(m);
  for (let i = 0; i < sent.length; i++) expect(await c.next(`message #${i} of 50`), sent[i], `message #${i} of 50`);
  await c.nothingMore();
  await c.closeCleanly();
});

scenario('heartbeat keeps an idle session alive for 1.5 s', async (ctx, mode) => {
  const c = await ctx.open(mode);
  await sleep(1500);
  if (c.closeInfo) throw new Error(`closed while idle: ${c.closeReason()}`);
  if (c.pings < 3) throw new Error(`only ${c.pings} ping(s) from the server in 1.5 s (pingInterval 300 ms)`);
  await c.echo('still here');
  await c.closeCleanly();
});

scenario('close(): "forced close", no error, and the server forgets the session', async (ctx, mode) => {
  const c = await ctx.open(mode);
  await c.echo('bye soon');
  const sid = await c.closeCleanly();
  await sessionGone(sid);
});

scenario('messages before, during and after the upgrade: each back exactly once, in order', async (ctx) => {
  const c = ctx.client('upgrade');
  const s = c.socket;
  const sent = { before: [], during: [], after: [], stream: [] };
  const send = (phase, i) => {
    const m = i % 2 ? `${phase} #${i} ✓` : new TextEncoder().encode(`${phase} #${i} bin`);
    sent[phase].push(m);
    s.send(m);
  };
  let streaming = null;
  let upgradedAt = null;
  let streamEnded;
  const streamOver = new Promise((resolve) => { streamEnded = resolve; });
  s.on('open', () => {
    for (let i = 0; i < 10; i++) send('before', i);
    let n = 0;   // a steady stream across the whole upgrade, every 2 ms until 100 ms after it
    streaming = setInterval(() => {
      send('stream', n++);
      if (upgradedAt !== null && Date.now() - upgradedAt > 100) {
        clearInterval(streaming);
        streamEnded();
      }
    }, 2);
  });
  s.on('upgrading', () => { for (let i = 0; i < 10; i++) send('during', i); });
  s.on('upgrade', () => {
    upgradedAt = Date.now();
    for (let i = 0; i < 10; i++) send('after', i);
  });
  ctx.cleanups.push(() => clearInterval(streaming));
  await c.open();
  if (c.upgrades.join() !== 'websocket') throw new Error(`'upgrade' events: [${c.upgrades}]`);
  await within(streamOver, WAIT_MS, 'the end of the stream (100 ms after the upgrade)');
  if (!sent.during.length) throw new Error("no 'upgrading' event before 'upgrade'");
  const total = Object.values(sent).reduce((n, a) => n + a.length, 0);
  const got = { before: [], during: [], after: [], stream: [] };
  for (let i = 0; i < total; i++) {
    const m = await c.next(`message ${i + 1} of ${total} (${got.before.length}/${got.during.length}/${got.after.length}/`
      + `${got.stream.length} of ${sent.before.length}/${sent.during.length}/${sent.after.length}/${sent.stream.length} `
      + 'before/during/after/stream back so far)');
    const text = typeof m === 'string' ? m : Buffer.from(bytesOf(m)).toString();
    const phase = text.split(' ')[0];
    if (!got[phase]) throw new Error(`unexpected message ${describe(m)}`);
    got[phase].push(m);
  }
  for (const phase of Object.keys(sent)) {
    const a = got[phase];
    const b = sent[phase];
    for (let i = 0; i < b.length; i++) {
      if (i >= a.length || !same(a[i], b[i])) {
        throw new Error(`${phase}: message ${i} is ${i < a.length ? describe(a[i]) : 'missing'}, expected ${describe(b[i])} `
          + `(${a.length} of ${b.length} ${phase} messages came back)`);
      }
    }
    if (a.length !== b.length) throw new Error(`${phase}: ${a.length} messages came back, ${b.length} were sent`);
  }
  await c.nothingMore();
  await c.closeCleanly();
}, 'upgrade');

// ---------------------------------------------------------------- runner

class Ctx {
  constructor() {
    this.clients = [];
    this.cleanups = [];
  }

  client(mode, extra) {
    const c = new Client(mode, extra);
    this.clients.push(c);
    return c;
  }

  open(mode, extra) {
    return this.client(mode, extra).open();
  }

  cleanup() {
    for (const f of this.cleanups) f();
    for (const c of this.clients) c.abort();
  }
}

let passed = 0;
let failed = 0;
for (const mode of modes) {
  for (const { name, fn, only } of scenarios) {
    if (only && only !== mode) continue;
    const label = `[${mode}] ${name}`;
    const ctx = new Ctx();
    try {
      await within(fn(ctx, mode), TIMEOUT_MS, `end of the scenario (time limit ${TIMEOUT_MS} ms)`);
      passed++;
      console.log(`PASS ${label}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${label}: ${String(e && e.message ? e.message : e).replace(/\s+/g, ' ')}`);
    } finally {
      ctx.cleanup();
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
// engine.io-client may hold timers or sockets of an abandoned scenario: do not wait for them.
process.exit(failed === 0 ? 0 : 1);
