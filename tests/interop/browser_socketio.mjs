// browser_socketio.mjs URL
//
// Interop test: socket.io-client in a real browser against the 04_chat example. Headless
// Chromium, driven by playwright-core, opens the chat page that 04_chat serves at URL
// (http://HOST:PORT/). The page loads socket.io-client's own bundle from npm, served by 04_chat
// at /socket.io.min.js, so everything below runs the client browsers will actually run:
// alice and bob use the page's buttons; other tabs make their own sockets with the page's `io`.
// The scenarios build on each other (bob needs alice, counts need both).
//
// Environment: CHROMIUM (default /usr/bin/chromium), BROWSER_TIMEOUT_MS (limit of every wait,
// default 10000; running over it is a failure), SOCKET_IO_CLIENT (the bundle the server was
// given, compared byte for byte with what it serves; default
// node_modules/socket.io-client/dist/socket.io.min.js, from the working directory).
//
// Prints one line per scenario, "PASS name" or "FAIL name: why", then "N passed, M failed";
// exit status 0 iff nothing failed.
import { readFile } from 'node:fs/promises';
import process from 'node:process';
import { chromium } from 'playwright-core';

function usage(msg) {
  if (msg) process.stderr.write(`browser_socketio.mjs: ${msg}\n`);
  process.stderr.write('usage: node browser_socketio.mjs http://HOST:PORT/\n');
  process.exit(2);
}

if (process.argv.length !== 3 || !/^http:\/\/[^/]+\/?$/.test(process.argv[2])) usage('one http://HOST:PORT/ URL is needed');
const BASE = process.argv[2].replace(/\/?$/, '/');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.BROWSER_TIMEOUT_MS) || 10000;
const BUNDLE = process.env.SOCKET_IO_CLIENT || 'node_modules/socket.io-client/dist/socket.io.min.js';
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
// installPageLib is serialised by Playwright and run inside each page, after the chat page has
// loaded; it must not refer to anything outside itself. It leaves `window.lib`: named sockets
// whose incoming events queue up until a bounded wait takes them.
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

  /** A socket's incoming events ([name, ...args]) in order, and its connection's outcome. */
  class Watched {
    constructor(name, socket) {
      this.name = name;
      this.socket = socket;
      this.queue = [];
      this.waiters = [];
      this.lastError = null;
      socket.onAny((...args) => {
        const w = this.waiters.shift();
        if (w) w.resolve(args);
        else this.queue.push(args);
      });
      socket.on('connect_error', (err) => { this.lastError = err; });
    }

    /** Resolves once connected; rejects with the connect_error's message and data. */
    connected() {
      const s = this.socket;
      if (s.connected) return Promise.resolve();
      if (this.lastError && !s.active) return Promise.reject(this.refusal(this.lastError));
      let off;
      const p = new Promise((resolve, reject) => {
        const ok = () => { off(); resolve(); };
        const no = (err) => { off(); reject(this.refusal(err)); };
        off = () => { s.off('connect', ok); s.off('connect_error', no); };
        s.on('connect', ok);
        s.on('connect_error', no);
      });
      return bounded(p, `${this.name} to connect`, () => off());
    }

    refusal(err) {
      const e = new Error(`${this.name}: connect_error ${show({ message: err.message, data: err.data })}`);
      e.refusal = { message: err.message, data: err.data };
      return e;
    }

    /** The next incoming event as [name, ...args]. */
    next(what) {
      if (this.queue.length) return Promise.resolve(this.queue.shift());
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

    /** The next incoming event must be `event` with the one argument `data`. */
    async expect(event, data) {
      const got = await this.next(`event ${show(event)}`);
      if (!deepEqual(got, [event, data])) throw new Error(`${this.name} got ${show(got)}, want ${show([event, data])}`);
    }
  }

  const watched = new Map();
  const get = (name) => {
    const w = watched.get(name);
    if (!w) throw new Error(`no socket named ${name} in this page`);
    return w;
  };

  window.lib = {
    show,
    deepEqual,
    timeoutMs,
    /** Watches the page's own socket (the one its connect button made) under `name`. */
    watchPageSocket(name) {
      // eslint-disable-next-line no-undef -- the page's top-level `let socket`
      if (!socket) throw new Error('the page made no socket');
      watched.set(name, new Watched(name, socket));   // eslint-disable-line no-undef
    },
    /** A socket of our own on /chat, from the page's `io` (socket.io-client's bundle). */
    open(name, opts) {
      // forceNew: a Manager (one Engine.IO session) of its own, as a separate client would have.
      const s = io('/chat', { forceNew: true, ...opts });   // eslint-disable-line no-undef
      watched.set(name, new Watched(name, s));
    },
    connected: (name) => get(name).connected(),
    /** Connects and returns the connect_error it must end with, as {message, data}. */
    async refused(name) {
      const w = get(name);
      try {
        await w.connected();
      } catch (err) {
        if (!err.refusal) throw err;
        w.socket.disconnect();   // no retry: the client gives up on a middleware refusal anyway
        return err.refusal;
      }
      throw new Error(`${name} connected (id ${w.socket.id}) though it should have been refused`);
    },
    transport: (name) => get(name).socket.io.engine.transport.name,
    /** Resolves once the Engine.IO session runs over WebSocket (after the upgrade, if any). */
    upgraded(name) {
      const engine = get(name).socket.io.engine;
      if (engine.transport.name === 'websocket') return Promise.resolve('already');
      let off;
      const p = new Promise((resolve, reject) => {
        const ok = (t) => { off(); resolve(t.name); };
        const no = (err) => { off(); reject(new Error(`${name}: upgradeError ${String(err && err.message)}`)); };
        off = () => { engine.off('upgrade', ok); engine.off('upgradeError', no); };
        engine.on('upgrade', ok);
        engine.on('upgradeError', no);
      });
      return bounded(p, `the upgrade to WebSocket on ${name} (transport ${engine.transport.name})`, () => off());
    },
    emit(name, event, ...args) {
      get(name).socket.emit(event, ...args);
    },
    /** emitWithAck, bounded by the client's own timeout. */
    ack(name, event, ...args) {
      return get(name).socket.timeout(timeoutMs).emitWithAck(event, ...args).catch((err) => {
        throw new Error(`${name}: no ack for ${show(event)} (${err.message})`);
      });
    },
    expect: (name, event, data) => get(name).expect(event, data),
    /** Asks onlineCount, one request at a time, until it is `want`; returns the answers seen. */
    async countUntil(name, want) {
      const seen = [];
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const left = Math.max(1, deadline - performance.now());
        const n = await get(name).socket.timeout(left).emitWithAck('onlineCount').catch(() => {
          throw new Error(`onlineCount never became ${want} in ${timeoutMs} ms; answers ${show(seen)}`);
        });
        if (seen[seen.length - 1] !== n) seen.push(n);
        if (n === want) return seen;
        if (performance.now() > deadline) throw new Error(`onlineCount never became ${want} in ${timeoutMs} ms; answers ${show(seen)}`);
      }
    },
    /** Disconnects and waits for the socket's own 'disconnect' event; returns its reason. */
    disconnect(name) {
      const s = get(name).socket;
      const p = new Promise((resolve) => s.once('disconnect', resolve));
      s.disconnect();
      return bounded(p, `${name}'s disconnect event`);
    },
  };
}

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
];

let browser;
let context;

/** A new tab on the chat page, its bundle loaded, with the page library. */
async function chatPage() {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  // What went over the network, seen from outside the page: which transports a session used.
  page.polls = [];
  page.websockets = [];
  page.on('request', (r) => { if (r.url().includes('/socket.io/')) page.polls.push(r.url()); });
  page.on('websocket', (ws) => page.websockets.push(ws.url()));
  const res = await page.goto(BASE, { waitUntil: 'load', timeout: TIMEOUT_MS });
  if (!res || res.status() !== 200) throw new Error(`GET ${BASE} answered ${res ? res.status() : 'nothing'}`);
  // The browser bundle's global: lookup() with Manager and Socket attached.
  const loaded = await inPage(page, () => typeof io === 'function' && typeof io.Manager === 'function', null, 'typeof io');   // eslint-disable-line no-undef
  if (!loaded) throw new Error('the page has no global io from socket.io-client\'s bundle');
  await page.evaluate(installPageLib, TIMEOUT_MS);
  return page;
}

/** Types `name` as the token and presses connect, as a person would; waits until connected. */
async function connectWithButton(page, name) {
  await page.bringToFront();
  await page.fill('#token', name);
  await page.click('#connect');
  await call(page, 'watchPageSocket', name);
  await call(page, 'connected', name);
}

/** Waits until the page's event log has a line with `text` in it. */
async function logShows(page, text) {
  await page.waitForFunction((t) => document.getElementById('log').textContent.includes(t), text, { timeout: TIMEOUT_MS })
    .catch(async () => {
      const log = await page.textContent('#log');
      throw new Error(`the page's log never showed ${show(text)}; it has ${show(log)}`);
    });
}

async function get(path) {
  const res = await withTimeout(fetch(new URL(path, BASE)), `GET ${path}`, TIMEOUT_MS);
  return { status: res.status, type: res.headers.get('content-type') || '', body: Buffer.from(await res.arrayBuffer()) };
}

async function run() {
  await scenario('the chat page and socket.io-client\'s npm bundle are served', async () => {
    for (const path of ['/', '/index.html']) {
      const r = await get(path);
      if (r.status !== 200 || !r.type.startsWith('text/html')) throw new Error(`GET ${path}: ${r.status} ${r.type}`);
      const html = r.body.toString();
      if (!html.includes('src="/socket.io.min.js"') || !html.includes("io('/chat'")) throw new Error(`GET ${path}: not the chat page: ${show(html.slice(0, 80))}`);
    }
    const js = await get('/socket.io.min.js');
    const want = await readFile(BUNDLE);
    if (js.status !== 200 || !js.type.includes('javascript')) throw new Error(`GET /socket.io.min.js: ${js.status} ${js.type} ${show(js.body.toString().slice(0, 120))}`);
    if (!js.body.equals(want)) throw new Error(`GET /socket.io.min.js: ${js.body.length} bytes, not the ${want.length} of ${BUNDLE}`);
    const other = await get('/nowhere');
    if (other.status !== 426) throw new Error(`GET /nowhere: ${other.status}, want 426 as before`);
    return `${js.body.length} bytes of bundle`;
  });

  const alice = await chatPage();
  const bob = await chatPage();

  await scenario('alice and bob connect with the page\'s button (auth.token)', async () => {
    await connectWithButton(alice, 'alice');
    await connectWithButton(bob, 'bob');
    await logShows(alice, 'connected as alice');
    await logShows(bob, 'connected as bob');
  });

  await scenario('the default transports upgrade from polling to WebSocket', async () => {
    for (const [name, page] of [['alice', alice], ['bob', bob]]) {
      await call(page, 'upgraded', name);
      // The session began with a polling handshake (no sid), and the WebSocket joined that session.
      const open = page.polls.find((u) => /[?&]transport=polling/.test(u) && !/[?&]sid=/.test(u));
      const ws = page.websockets.find((u) => /[?&]transport=websocket/.test(u) && /[?&]sid=/.test(u));
      if (!open || !ws) throw new Error(`${name}: polling requests ${show(page.polls)}, WebSockets ${show(page.websockets)}`);
    }
    return `alice's tab: ${alice.polls.length} polling requests, then ${alice.websockets.length} WebSocket`;
  });

  await scenario('onlineCount by emitWithAck is 2', async () => {
    const n = await call(alice, 'ack', 'alice', 'onlineCount');
    if (n !== 2) throw new Error(`the ack is ${show(n)}, want 2`);
    const m = await call(bob, 'ack', 'bob', 'onlineCount');
    if (m !== 2) throw new Error(`bob's ack is ${show(m)}, want 2`);
  });

  await scenario('a room: bob\'s roomMessage reaches alice (page buttons)', async () => {
    // A tab in the background gets animation frames rarely, and Playwright waits for a few
    // before it clicks: the tab whose buttons are pressed comes to the front first.
    await alice.bringToFront();
    await alice.click('#join');
    // Her socket's events are handled in order: once this is answered, she is in the room.
    await call(alice, 'ack', 'alice', 'onlineCount');
    await bob.bringToFront();
    await bob.click('#join');
    await call(alice, 'expect', 'alice', 'userJoined', { userId: 'bob', room: 'lobby' });
    await bob.fill('#text', 'hello from bob’s page ✓');
    await bob.click('#send');
    await call(alice, 'expect', 'alice', 'receiveRoomMessage', { from: 'bob', room: 'lobby', message: 'hello from bob’s page ✓' });
    await logShows(alice, 'receiveRoomMessage {');   // the page's log line, keys in the server's order
    await logShows(alice, '"message":"hello from bob’s page ✓"');
  });

  const stranger = await chatPage();

  for (const [what, opts] of [['a bad token', { auth: { token: 'not a name!' } }], ['no token', {}]]) {
    await scenario(`${what} gives connect_error with the refusal and data.status 401`, async () => {
      const name = `refused (${what})`;
      await call(stranger, 'open', name, opts);
      const got = await call(stranger, 'refused', name);
      const want = { message: 'a token of letters and digits is required', data: { status: 401 } };
      if (show(got) !== show(want)) throw new Error(`connect_error ${show(got)}, want ${show(want)}`);
    });
  }

  await scenario('the page\'s button shows a refusal in its log', async () => {
    await stranger.bringToFront();
    await stranger.fill('#token', 'bad token');
    await stranger.click('#connect');
    await logShows(stranger, 'refused: a token of letters and digits is required {"status":401}');
    await inPage(stranger, () => socket.disconnect(), null, 'socket.disconnect()');   // eslint-disable-line no-undef
  });

  await scenario('\'secret\' from a non-admin gives an exception event "Forbidden resource"', async () => {
    await call(alice, 'emit', 'alice', 'secret');
    await call(alice, 'expect', 'alice', 'exception', { status: 'error', message: 'Forbidden resource' });
  });

  await scenario('\'secret\' from admin: the returned value is the ack', async () => {
    await call(stranger, 'open', 'admin', { auth: { token: 'admin' } });
    await call(stranger, 'connected', 'admin');
    const got = await call(stranger, 'ack', 'admin', 'secret');
    if (typeof got?.secret !== 'string') throw new Error(`the ack is ${show(got)}, want {"secret": string}`);
    await call(stranger, 'disconnect', 'admin');
    const seen = await call(alice, 'countUntil', 'alice', 2);
    return `onlineCount back to 2: ${show(seen)}`;
  });

  // Each transport alone, as a client may be configured; the counts show they are really online.
  for (const [user, transport] of [['carol', 'polling'], ['dave', 'websocket']]) {
    await scenario(`transports: ['${transport}'] only (${user})`, async () => {
      const page = await chatPage();
      try {
        await call(page, 'open', user, { auth: { token: user }, transports: [transport] });
        await call(page, 'connected', user);
        const n = await call(page, 'ack', user, 'onlineCount');
        if (n !== 3) throw new Error(`onlineCount ${show(n)}, want 3`);
        await call(page, 'emit', user, 'joinRoom', { room: 'lobby' });
        await call(alice, 'expect', 'alice', 'userJoined', { userId: user, room: 'lobby' });
        await call(bob, 'emit', 'bob', 'roomMessage', { room: 'lobby', message: `hi ${user}` });
        const heard = { from: 'bob', room: 'lobby', message: `hi ${user}` };
        await call(page, 'expect', user, 'receiveRoomMessage', heard);
        await call(alice, 'expect', 'alice', 'receiveRoomMessage', heard);
        await call(page, 'emit', user, 'roomMessage', { room: 'lobby', message: `${user} over ${transport}` });
        await call(alice, 'expect', 'alice', 'receiveRoomMessage', { from: user, room: 'lobby', message: `${user} over ${transport}` });
        const used = await call(page, 'transport', user);
        if (used !== transport) throw new Error(`the session ran over ${used}`);
        const reason = await call(page, 'disconnect', user);
        if (reason !== 'io client disconnect') throw new Error(`disconnect reason ${show(reason)}`);
        const seen = await call(alice, 'countUntil', 'alice', 2);
        return `onlineCount back to 2: ${show(seen)}`;
      } finally {
        await withTimeout(page.close(), `${user}'s tab to close`, STEP_LIMIT_MS);
      }
    });
  }

  await scenario('closing bob\'s tab makes onlineCount drop', async () => {
    // Closing the tab is how most browser connections end: nothing is said, the WebSocket goes.
    await withTimeout(bob.close(), 'bob\'s tab to close', STEP_LIMIT_MS);
    const seen = await call(alice, 'countUntil', 'alice', 1);
    if (seen[0] !== 2 && seen[0] !== 1) throw new Error(`onlineCount went ${show(seen)}`);
    return `answers ${show(seen)}`;
  });

  await scenario('alice disconnects', async () => {
    const reason = await call(alice, 'disconnect', 'alice');
    if (reason !== 'io client disconnect') throw new Error(`disconnect reason ${show(reason)}`);
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
  console.log(`browser: Chromium ${browser.version()}, playwright-core; page ${BASE}`);
  try {
    await run();
  } catch (err) {
    // Outside any scenario: a tab that could not be made, loaded or closed.
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
