// browser_session.mjs [--echo URL]... [--deflate-echo URL]... [--chat URL]
//
// Interop test: a real browser against our servers. Headless Chromium, driven
// by playwright-core, runs page JavaScript that uses the browser's own
// `WebSocket`, the client the gateway's users will actually have:
//   --echo URL  an echo server at URL (ws:// or wss://; may be repeated) that
//               takes messages over 1 MiB, such as tests/conformance/conformance_echo:
//               text, binary, large messages, ordering, a close from the page
//   --deflate-echo URL  the same against an echo server with permessage-deflate
//               on (conformance_echo --deflate MODE), which Chromium offers by
//               default; every connection must agree it. The URL's path names
//               the server's mode, /shared or /dedicated (the server serves any
//               path): shared answers with no context takeover either way,
//               dedicated with no parameters (both sides keep their context).
//   --chat URL  the 04_chat example at URL (ws://HOST:PORT/chat): a token in
//               the query, a token in the subprotocols, refused handshakes,
//               messages between two tabs, a tab that goes away
//
// The pages are about:blank-like documents made with setContent: a WebSocket
// may go to any origin, so no page server is needed. For wss:// Chromium runs
// with --ignore-certificate-errors, since the server's certificate is a
// throwaway self-signed one.
//
// Environment: CHROMIUM (default /usr/bin/chromium), BROWSER_TIMEOUT_MS (limit
// of every wait in the page, default 10000; running over it is a failure).
//
// Prints one line per scenario, "PASS name" or "FAIL name: why", then
// "N passed, M failed"; exit status 0 iff nothing failed.
import process from 'node:process';
import { chromium } from 'playwright-core';

function usage(msg) {
  if (msg) process.stderr.write(`browser_session.mjs: ${msg}\n`);
  process.stderr.write('usage: node browser_session.mjs [--echo URL]... [--deflate-echo URL]... [--chat URL]\n');
  process.exit(2);
}

const echoUrls = [];
const deflateEchoUrls = [];
let chatUrl = null;
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag !== '--echo' && flag !== '--deflate-echo' && flag !== '--chat') usage(`unexpected argument '${flag}'`);
    const url = argv[++i];
    if (!url || !/^wss?:\/\//.test(url)) usage(`${flag} needs a ws:// or wss:// URL`);
    if (flag === '--echo') echoUrls.push(url);
    else if (flag === '--deflate-echo') {
      if (!/\/(shared|dedicated)$/.test(url)) usage('--deflate-echo needs a URL whose path is /shared or /dedicated');
      deflateEchoUrls.push(url);
    } else chatUrl = url;
  }
  if (!echoUrls.length && !deflateEchoUrls.length && !chatUrl) usage('nothing to test');
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.BROWSER_TIMEOUT_MS) || 10000;
// Node's own limit on one call into a page. Every wait in the page is already bounded by
// TIMEOUT_MS; this one only catches a page or browser that stops answering altogether.
const STEP_LIMIT_MS = 3 * TIMEOUT_MS;

// A stray rejection from an abandoned (timed-out) wait must not kill the run.
process.on('unhandledRejection', () => {});

const show = (v) => JSON.stringify(v);

/** Rejects after `ms` with "timed out after ... waiting for WHAT". */
function withTimeout(promise, what, ms) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ------------------------------------------------------------ in the page
//
// installPageLib is serialised by Playwright and run inside each page; it must not refer to
// anything outside itself. It leaves `window.lib`: named WebSocket connections whose received
// messages queue up until a bounded wait takes them, and the checks the scenarios share.
function installPageLib(timeoutMs) {
  const show = (v) => JSON.stringify(v);

  function bounded(promise, what, onTimeout = () => {}) {
    let timer;
    return Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          onTimeout();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  function deepEqual(a, b) {
    if (a === b) return true;
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }

  /** A short description of a received message for error texts. */
  function describe(data) {
    if (typeof data === 'string') {
      return data.length > 80 ? `text of ${data.length} UTF-16 units ${show(data.slice(0, 60))}...` : `text ${show(data)}`;
    }
    if (data instanceof ArrayBuffer) return `an ArrayBuffer of ${data.byteLength} bytes`;
    if (data instanceof Blob) return `a Blob of ${data.size} bytes`;
    return `something else: ${String(data)}`;
  }

  class Conn {
    constructor(name, url, protocols, binaryType) {
      this.name = name;
      this.ws = protocols === undefined ? new WebSocket(url) : new WebSocket(url, protocols);
      if (binaryType) this.ws.binaryType = binaryType;
      this.events = [];   // 'open', 'error', 'close' in the order the page saw them
      this.queue = [];
      this.waiters = [];
      this.closeInfo = null;
      let opened;
      let closed;
      this.opened = new Promise((resolve, reject) => { opened = { resolve, reject }; });
      this.closed = new Promise((resolve) => { closed = resolve; });
      this.opened.catch(() => {});   // awaited or not, a refusal is reported where it matters
      this.ws.addEventListener('open', () => {
        this.events.push('open');
        opened.resolve();
      });
      this.ws.addEventListener('error', () => this.events.push('error'));
      this.ws.addEventListener('message', (e) => {
        const w = this.waiters.shift();
        if (w) w.resolve(e.data);
        else this.queue.push(e.data);
      });
      this.ws.addEventListener('close', (e) => {
        this.events.push('close');
        this.closeInfo = { code: e.code, reason: e.reason, wasClean: e.wasClean };
        const why = `${this.name}: closed (code ${e.code}, events ${show(this.events)})`;
        opened.reject(new Error(`${why} before opening`));
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${why} while waiting for a message`));
        closed(this.closeInfo);
      });
    }

    /** The next message's data (string, ArrayBuffer or Blob). */
    next(what = 'a message') {
      if (this.queue.length) return Promise.resolve(this.queue.shift());
      if (this.closeInfo) {
        return Promise.reject(new Error(`${this.name}: already closed (code ${this.closeInfo.code}) `
          + `while waiting for ${what}`));
      }
      let waiter;
      const p = new Promise((resolve, reject) => {
        waiter = { resolve, reject };
        this.waiters.push(waiter);
      });
      return bounded(p, `${what} on ${this.name}`, () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      });
    }

    async nextText(what) {
      const data = await this.next(what);
      if (typeof data !== 'string') throw new Error(`${this.name}: got ${describe(data)}, want ${what}`);
      return data;
    }

    /** The next binary message's bytes, whatever the binaryType. */
    async nextBytes(what) {
      const data = await this.next(what);
      if (data instanceof ArrayBuffer) return new Uint8Array(data);
      if (data instanceof Blob) return new Uint8Array(await bounded(data.arrayBuffer(), `reading a Blob on ${this.name}`));
      throw new Error(`${this.name}: got ${describe(data)}, want ${what}`);
    }

    /** The next message, which must be a gateway envelope {"event": string, ...}. */
    async nextEnvelope(what) {
      const text = await this.nextText(what);
      let obj;
      try {
        obj = JSON.parse(text);
      } catch {
        throw new Error(`${this.name}: got text that is not JSON: ${show(text)}`);
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || typeof obj.event !== 'string') {
        throw new Error(`${this.name}: got ${text}, not an {"event": string, ...} object`);
      }
      return obj;
    }

    waitClosed(what = 'the close event') {
      return bounded(this.closed, `${what} on ${this.name}`);
    }

    /** Closes from the page and waits for the close event; returns what it said. */
    async close(code, reason) {
      if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) {
        this.ws.close(code, reason);
      }
      return this.waitClosed(`the end of the close handshake${code === undefined ? '' : ` (${code})`}`);
    }
  }

  const conns = new Map();
  const conn = (name) => {
    const c = conns.get(name);
    if (!c) throw new Error(`no connection named ${name} in this page`);
    return c;
  };

  window.lib = {
    timeoutMs,
    show,
    deepEqual,
    describe,

    /** Opens a named connection and waits for `open`; returns what the handshake agreed. */
    async open(name, url, protocols, binaryType) {
      const c = new Conn(name, url, protocols, binaryType);
      conns.set(name, c);
      await bounded(c.opened, `${name} to open (${url})`);
      return { protocol: c.ws.protocol, extensions: c.ws.extensions, readyState: c.ws.readyState };
    },

    /** Starts a connection without waiting for anything (for those that must fail). */
    start(name, url, protocols) {
      conns.set(name, new Conn(name, url, protocols));
    },

    conn,

    /** The extensions the named connection's handshake agreed (ws.extensions). */
    extensions: (name) => conn(name).ws.extensions,

    /** Waits for the named connection's close event; returns its fields and the events before it. */
    async closed(name) {
      const c = conn(name);
      const info = await c.waitClosed().catch((err) => {
        throw new Error(`${err.message} (events so far: ${show(c.events)})`);
      });
      return { ...info, events: c.events };
    },

    close: (name, code, reason) => conn(name).close(code, reason),

    /** A normal close from the page, which must end cleanly with 1000. */
    async closeClean(name) {
      const info = await conn(name).close(1000);
      if (info.code !== 1000 || !info.wasClean) throw new Error(`${name}: close ended with ${show(info)}`);
    },

    /** Sends {"event", "data"?, "id"?} as a text frame. */
    emit(name, event, data, id) {
      const m = { event };
      if (data !== undefined) m.data = data;
      if (id !== undefined) m.id = id;
      conn(name).ws.send(JSON.stringify(m));
    },

    /** The next message on the named connection must be exactly `want`. */
    async expect(name, want) {
      const got = await conn(name).nextEnvelope(show(want));
      if (!deepEqual(got, want)) throw new Error(`${name}: want ${show(want)}, got ${show(got)}`);
      return got;
    },

    /** Index of the first difference between two byte arrays, or -1. */
    firstDifference(a, b) {
      const n = Math.min(a.length, b.length);
      for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
      return a.length === b.length ? -1 : n;
    },
  };
}

// ------------------------------------------------------- echo scenarios
//
// Each runs wholly in a page, as one call, on a connection of its own; `url` is the echo
// server's. They end with a normal close that must be clean, so every scenario also checks the
// closing handshake.

const echoScenarios = [
  ['open', async ({ url, name }) => {
    const got = await lib.open(name, url);
    if (got.readyState !== WebSocket.OPEN) throw new Error(`readyState ${got.readyState} after open`);
    if (got.protocol !== '') throw new Error(`protocol ${lib.show(got.protocol)} though none was asked for`);
    await lib.closeClean(name);
    return `extensions ${lib.show(got.extensions)}`;
  }],

  ['text echo (ASCII and UTF-8)', async ({ url, name }) => {
    await lib.open(name, url);
    const c = lib.conn(name);
    const texts = [
      'hello, world',
      '',
      'héllo wörld: 2-byte Latin',
      'こんにちは世界: 3-byte CJK',
      '😀 𝄞 🎉: 4-byte, surrogate pairs in JavaScript',
      'mixed aé日😀 and the last code point \u{10FFFF}',
      'NUL \u0000 and DEL \u007f are valid UTF-8 too',
      '\uFFFD replacement character, \uFEFF BOM',
    ];
    for (const t of texts) c.ws.send(t);
    for (const t of texts) {
      const got = await c.nextText(`the echo of ${lib.show(t)}`);
      if (got !== t) throw new Error(`sent ${lib.show(t)}, got back ${lib.show(got)}`);
    }
    await lib.closeClean(name);
    return `${texts.length} messages`;
  }],

  ['binary echo as ArrayBuffer (all 256 byte values)', async ({ url, name }) => {
    await lib.open(name, url, undefined, 'arraybuffer');
    const c = lib.conn(name);
    const all = new Uint8Array(256).map((_, i) => i);
    // A view into the middle of a larger buffer: only the view's bytes may go out.
    const view = all.subarray(100, 120);
    const sent = [all.slice(), view, new Uint8Array(0), all.slice().reverse()];
    c.ws.send(sent[0].buffer);
    c.ws.send(view);
    c.ws.send(new ArrayBuffer(0));
    c.ws.send(new DataView(sent[3].buffer));
    for (const [i, want] of sent.entries()) {
      const data = await c.next(`binary echo #${i}`);
      if (!(data instanceof ArrayBuffer)) throw new Error(`echo #${i}: got ${lib.describe(data)}, want an ArrayBuffer`);
      const got = new Uint8Array(data);
      const at = lib.firstDifference(got, want);
      if (at >= 0) throw new Error(`echo #${i}: ${got.length} bytes back for ${want.length}, first difference at ${at}`);
    }
    await lib.closeClean(name);
    return 'ArrayBuffer, typed-array view, empty, DataView';
  }],

  ['binary echo as Blob', async ({ url, name }) => {
    await lib.open(name, url, undefined, 'blob');
    const c = lib.conn(name);
    const bytes = new Uint8Array(256).map((_, i) => 255 - i);
    c.ws.send(new Blob([bytes.subarray(0, 128), bytes.subarray(128)]));
    c.ws.send('text between two blobs');
    c.ws.send(new Blob([]));
    const first = await c.next('the echo of a 256-byte Blob');
    if (!(first instanceof Blob)) throw new Error(`got ${lib.describe(first)}, want a Blob`);
    const got = new Uint8Array(await first.arrayBuffer());
    const at = lib.firstDifference(got, bytes);
    if (at >= 0) throw new Error(`${got.length} bytes back for 256, first difference at ${at}`);
    const text = await c.nextText('the text sent between the blobs');
    if (text !== 'text between two blobs') throw new Error(`got ${lib.show(text)} between the blobs`);
    const empty = await c.next('the echo of an empty Blob');
    if (!(empty instanceof Blob) || empty.size !== 0) throw new Error(`got ${lib.describe(empty)}, want an empty Blob`);
    await lib.closeClean(name);
    return '';
  }],

  ['1 MiB messages, binary and text', async ({ url, name }) => {
    await lib.open(name, url, undefined, 'arraybuffer');
    const c = lib.conn(name);
    // Pseudo-random bytes (xorshift32), so that no pattern can hide a misplaced chunk; an odd
    // length, so that nothing lines up with a power of two.
    const big = new Uint8Array((1 << 20) + 7);
    let x = 0x9e3779b9;
    for (let i = 0; i < big.length; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      big[i] = x & 0xff;
    }
    // 1, 2, 3 and 4-byte UTF-8 sequences over and over: 10 bytes a round, just over 1 MiB in all.
    const text = 'aé日😀'.repeat(104858);
    c.ws.send(big);
    c.ws.send(text);
    const got = await c.nextBytes('the echo of the 1 MiB binary message');
    const at = lib.firstDifference(got, big);
    if (at >= 0) throw new Error(`${got.length} bytes back for ${big.length}, first difference at ${at}`);
    const gotText = await c.nextText('the echo of the 1 MiB text message');
    if (gotText !== text) {
      let i = 0;
      while (i < text.length && gotText[i] === text[i]) i++;
      throw new Error(`text of ${gotText.length} UTF-16 units back for ${text.length}, first difference at ${i}`);
    }
    await lib.closeClean(name);
    return `${big.length} bytes and ${new TextEncoder().encode(text).length} bytes of UTF-8`;
  }],

  ['2000 messages in flight keep their order', async ({ url, name }) => {
    await lib.open(name, url, undefined, 'arraybuffer');
    const c = lib.conn(name);
    const n = 2000;
    // Sent back to back without waiting: text and binary alternate, each carrying its index.
    for (let i = 0; i < n; i++) {
      if (i % 2 === 0) c.ws.send(`message ${i} ✓`);
      else c.ws.send(new Uint32Array([i, ~i >>> 0]));
    }
    const inFlight = c.ws.bufferedAmount;
    for (let i = 0; i < n; i++) {
      const data = await c.next(`message ${i} of ${n}`);
      if (i % 2 === 0) {
        if (data !== `message ${i} ✓`) throw new Error(`message ${i}: got ${lib.describe(data)}`);
      } else {
        const ok = data instanceof ArrayBuffer && data.byteLength === 8
          && new Uint32Array(data)[0] === i && new Uint32Array(data)[1] === (~i >>> 0);
        if (!ok) {
          const what = data instanceof ArrayBuffer && data.byteLength === 8 ? `binary index ${new Uint32Array(data)[0]}` : lib.describe(data);
          throw new Error(`message ${i}: got ${what}`);
        }
      }
    }
    await lib.closeClean(name);
    return `bufferedAmount ${inFlight} right after sending`;
  }],

  ['close from the page with 4000 and a reason', async ({ url, name }) => {
    await lib.open(name, url);
    const c = lib.conn(name);
    // Reasons are limited to 123 bytes of UTF-8; this one has multi-byte characters in it.
    const reason = 'page is done — fin ✓';
    const info = await c.close(4000, reason);
    const want = { code: 4000, reason, wasClean: true };
    if (!lib.deepEqual(info, want)) throw new Error(`close event ${lib.show(info)}, want ${lib.show(want)}`);
    if (!lib.deepEqual(c.events, ['open', 'close'])) throw new Error(`events ${lib.show(c.events)}, want ["open","close"]`);
    return '';
  }],

  ['close from the page without a code', async ({ url, name }) => {
    await lib.open(name, url);
    // ws.close() sends a close frame with no payload; the server's answer carries none either,
    // which the page learns as 1005 ("no status received").
    const info = await lib.close(name);
    const want = { code: 1005, reason: '', wasClean: true };
    if (!lib.deepEqual(info, want)) throw new Error(`close event ${lib.show(info)}, want ${lib.show(want)}`);
    return '';
  }],
];

// --------------------------------------------------------------- runner

let passed = 0;
let failed = 0;

/** Playwright's error text without its call prefix and the page's stack. */
function why(err) {
  const text = String(err && err.message ? err.message : err);
  return text.replace(/^\w+\.\w+: /, '').replace(/^Error: /, '').split('\n    at ')[0].trim();
}

async function scenario(name, body) {
  try {
    const note = await body();
    passed++;
    console.log(`PASS ${name}${note ? ` (${note})` : ''}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${why(err)}`);
  }
}

/** Runs fn(arg) in the page, bounded on this side too. */
function inPage(page, fn, arg, what) {
  return withTimeout(page.evaluate(fn, arg), `the page (${what})`, STEP_LIMIT_MS);
}

/** Calls window.lib[method](...args) in the page. */
function call(page, method, ...args) {
  return inPage(page, ([m, a]) => window.lib[m](...a), [method, args], `${method}(${args.map(show).join(', ')})`);
}

const LAUNCH_ARGS = [
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  // This machine's network is closed: Chromium's own background connections would only fail.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // The wss:// server's certificate is a throwaway self-signed one.
  '--ignore-certificate-errors',
];

let browser;
let context;

/** Values pushed by event handlers, taken in order by bounded waits. */
class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
  }

  push(v) {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  }

  next(what) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    let waiter;
    const p = new Promise((resolve) => {
      waiter = resolve;
      this.waiters.push(waiter);
    });
    return withTimeout(p, what, TIMEOUT_MS).catch((err) => {
      // A wait that gave up must not swallow the next value.
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
      throw err;
    });
  }
}

/** A new tab with the page library; the browser's texts about failed WebSockets go to `socketErrors`. */
async function newPage(socketErrors) {
  const page = await context.newPage();
  if (socketErrors) {
    // What the browser knows about a failed connection (the HTTP status, say) never reaches page
    // JavaScript, by design; Playwright reports it from outside.
    page.on('websocket', (ws) => {
      ws.on('socketerror', (text) => socketErrors.push({ url: ws.url(), text }));
    });
  }
  await page.setContent('<!doctype html><meta charset="utf-8"><title>gateway.hpp browser test</title>');
  await page.evaluate(installPageLib, TIMEOUT_MS);
  return page;
}

/**
 * What is wrong with a connection's permessage-deflate agreement (ws.extensions, the server's
 * whole answer) for a server in `mode`, or null. Chromium offers "permessage-deflate;
 * client_max_window_bits".
 */
function deflateProblem(extensions, mode) {
  const [name, ...params] = extensions.split(';').map((p) => p.trim().toLowerCase());
  const want = mode === 'shared' ? ['client_no_context_takeover', 'server_no_context_takeover'] : [];
  if (name !== 'permessage-deflate' || params.sort().join() !== want.join()) {
    return `ws.extensions is ${show(extensions)}; a ${mode} server answers "permessage-deflate"`
      + `${want.map((p) => `; ${p}`).join('')}`;
  }
  return null;
}

/** The echo scenarios against url; deflate: the server's permessage-deflate mode, or null. */
async function runEcho(url, deflate = null) {
  const scheme = url.slice(0, url.indexOf(':'));
  const label = deflate ? `${scheme}+deflate (${deflate})` : scheme;
  const page = await newPage();
  for (const [i, [name, fn]] of echoScenarios.entries()) {
    const conn = `${label}-${i}`;
    await scenario(`${label}: ${name}`, async () => {
      const note = await inPage(page, fn, { url, name: conn }, name);
      if (deflate) {
        const problem = deflateProblem(await call(page, 'extensions', conn), deflate);
        if (problem) throw new Error(problem);
      }
      return note;
    });
  }
  await page.close();
}

/**
 * The chat: alice and bob in two tabs of one browser, as two people would be; a third tab for
 * connections that must be refused. The scenarios build on each other (bob needs alice).
 */
async function runChat(base) {
  const socketErrors = new Inbox();
  const alice = await newPage();
  const bob = await newPage();
  const stranger = await newPage(socketErrors);

  await scenario('chat: ?token=alice connects and gets replies', async () => {
    const got = await call(alice, 'open', 'alice', `${base}?token=alice`);
    if (got.protocol !== '') throw new Error(`protocol ${show(got.protocol)} though none was asked for`);
    // A request on the new socket is also a fence: it is handled after the server's on_connect.
    await call(alice, 'emit', 'alice', 'onlineCount', undefined, 1);
    await call(alice, 'expect', 'alice', { event: 'onlineCount', data: 1, id: 1 });
    await call(alice, 'emit', 'alice', 'message', { text: 'hello from alice’s tab ✓' });
    await call(alice, 'expect', 'alice', { event: 'receiveMessage', data: { from: 'alice', text: 'hello from alice’s tab ✓' } });
  });

  await scenario('chat: subprotocols ["access_token", "bob"] connect as bob', async () => {
    const got = await call(bob, 'open', 'bob', base, ['access_token', 'bob']);
    if (got.protocol !== 'access_token') throw new Error(`ws.protocol is ${show(got.protocol)}, want "access_token"`);
    await call(bob, 'emit', 'bob', 'onlineCount', undefined, 'b1');
    await call(bob, 'expect', 'bob', { event: 'onlineCount', data: 2, id: 'b1' });
    // Only user "bob" gets this, in the other tab.
    await call(alice, 'emit', 'alice', 'privateMessage', { toUserId: 'bob', message: 'psst, bob' });
    await call(bob, 'expect', 'bob', { event: 'receivePrivateMessage', data: { from: 'alice', message: 'psst, bob' } });
    // bob's words carry his name to both tabs. Alice's next message being this one also shows the
    // private message did not reach her: it would have been queued to her before this.
    await call(bob, 'emit', 'bob', 'message', { text: 'hi alice' });
    const said = { event: 'receiveMessage', data: { from: 'bob', text: 'hi alice' } };
    await call(bob, 'expect', 'bob', said);
    await call(alice, 'expect', 'alice', said);
  });

  await scenario('chat: a room across two tabs', async () => {
    await call(alice, 'emit', 'alice', 'joinRoom', { room: 'lobby' });
    await call(alice, 'emit', 'alice', 'onlineCount', undefined, 2);   // alice is in the room once answered
    await call(alice, 'expect', 'alice', { event: 'onlineCount', data: 2, id: 2 });
    await call(bob, 'emit', 'bob', 'joinRoom', { room: 'lobby' });
    await call(alice, 'expect', 'alice', { event: 'userJoined', data: { userId: 'bob', room: 'lobby' } });
    await call(alice, 'emit', 'alice', 'roomMessage', { room: 'lobby', message: 'welcome to the lobby' });
    await call(bob, 'expect', 'bob', { event: 'receiveRoomMessage', data: { from: 'alice', room: 'lobby', message: 'welcome to the lobby' } });
  });

  // Refused at the handshake: the page sees only `error` then `close` 1006, never `open`.
  const refusals = [
    ['no token', `${base}`, undefined, /401|authenticat/i],
    ['a bad token in the subprotocols', `${base}`, ['access_token', 'not-a-name'], /401|authenticat/i],
    ['an unknown path', `${base.replace(/\/chat$/, '')}/nowhere?token=alice`, undefined, /404/],
  ];
  for (const [i, [what, url, protocols, said]] of refusals.entries()) {
    await scenario(`chat: ${what} is refused at the handshake`, async () => {
      const name = `refused-${i}`;
      await call(stranger, 'start', name, url, protocols);
      const got = await call(stranger, 'closed', name);
      const want = { code: 1006, reason: '', wasClean: false, events: ['error', 'close'] };
      if (show(got) !== show(want)) throw new Error(`the page saw ${show(got)}, want ${show(want)}`);
      // The status is only in the browser's error text. It reaches us apart from the page's events,
      // so it is waited for rather than assumed to have come first. This tab makes one failing
      // connection at a time, so the next text is this connection's.
      const err = await socketErrors.next(`the browser's error text for ${url}`);
      if (err.url !== url) throw new Error(`the browser's next error text is about ${err.url}, not ${url}`);
      if (!said.test(err.text)) throw new Error(`the browser said ${show(err.text)}, want a match for ${said}`);
      return `browser: ${show(err.text)}`;
    });
  }

  await scenario('chat: closing bob\'s tab takes bob offline', async () => {
    // Closing the tab is how most browser connections end.
    await withTimeout(bob.close(), 'bob\'s tab to close', STEP_LIMIT_MS);
    // Nothing tells alice; she asks the server until its count drops, one request at a time, each
    // answer awaited, for at most the usual limit.
    const { data, asked } = await inPage(alice, async () => {
      const c = lib.conn('alice');
      const deadline = performance.now() + lib.timeoutMs;
      for (let n = 1; ; n++) {
        const id = `poll-${n}`;
        lib.emit('alice', 'onlineCount', undefined, id);
        const got = await c.nextEnvelope(`the reply to onlineCount id ${id}`);
        if (got.event !== 'onlineCount' || got.id !== id) throw new Error(`alice got ${lib.show(got)} while asking onlineCount`);
        if (got.data !== 2) return { data: got.data, asked: n };
        if (performance.now() > deadline) throw new Error(`onlineCount still 2 after ${n} requests in ${lib.timeoutMs} ms`);
      }
    }, null, 'onlineCount to drop');
    if (data !== 1) throw new Error(`onlineCount went from 2 to ${data}, want 1`);
    return `seen after ${asked} request(s)`;
  });

  await scenario('chat: alice closes normally', async () => {
    const info = await call(alice, 'close', 'alice', 1000, 'bye');
    const want = { code: 1000, reason: 'bye', wasClean: true };
    if (show(info) !== show(want)) throw new Error(`close event ${show(info)}, want ${show(want)}`);
  });

  await alice.close();
  await stranger.close();
}

async function main() {
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS, timeout: STEP_LIMIT_MS });
    context = await browser.newContext();
  } catch (err) {
    console.log(`FAIL launch ${CHROMIUM}: ${why(err)}`);
    console.log('0 passed, 1 failed');
    return 1;
  }
  console.log(`browser: Chromium ${browser.version()}, playwright-core`);
  try {
    for (const url of echoUrls) await runEcho(url);
    for (const url of deflateEchoUrls) await runEcho(url, url.slice(url.lastIndexOf('/') + 1));
    if (chatUrl) await runChat(chatUrl);
  } catch (err) {
    // Outside any scenario: a tab that could not be made or closed.
    failed++;
    console.log(`FAIL setting up a page: ${why(err)}`);
  }
  await withTimeout(browser.close(), 'the browser to close', STEP_LIMIT_MS).catch((err) => {
    failed++;
    console.log(`FAIL closing the browser: ${why(err)}`);
  });
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
