// engineio_suite.mjs BASE_URL [PATH]
//
// Byte-level Engine.IO v4 conformance checks against a running echo server, e.g.
//   node tests/conformance/engineio_suite.mjs http://127.0.0.1:8080 /engine.io/
//
// The server under test must be configured as tests/conformance/engineio_node_reference.mjs is:
// pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000 bytes, CORS for any origin, and it
// must send every received message back unchanged (text as text, binary as binary).
//
// Prints "ok NAME" or "FAIL NAME: why" per check, then "N passed, M failed"; exit status 0 iff
// nothing failed. Each check has a time limit (EIO_CHECK_TIMEOUT_MS, default 10000 ms).
// Only Node built-ins plus the `ws` client (resolved from the repository's node_modules).
import http from 'node:http';
import process from 'node:process';
import WebSocket from 'ws';

const [baseArg, pathArg = '/engine.io/'] = process.argv.slice(2);
if (!baseArg || !/^http:\/\/[^/]+\/?$/.test(baseArg) || !pathArg.startsWith('/')) {
  process.stderr.write('usage: node engineio_suite.mjs http://HOST:PORT [PATH]\n');
  process.exit(2);
}
const HTTP_BASE = baseArg.replace(/\/$/, '') + pathArg;
const WS_BASE = HTTP_BASE.replace(/^http/, 'ws');

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const MAX_PAYLOAD = 1000000;
const MARGIN = 400; // scheduling slack allowed on every protocol timer
const CHECK_TIMEOUT_MS = Number(process.env.EIO_CHECK_TIMEOUT_MS) || 10000;
// An echo, an answer or a close expected now: an upper bound a passing run never waits out, wide
// enough for a sanitized server on a loaded machine.
const REPLY_MS = 2000;
const SID_RE = /^[A-Za-z0-9_-]{20}$/;
const SEP = '\x1e';

// A stray rejection from an abandoned (timed-out) check must not kill the run.
process.on('unhandledRejection', () => {});

// ---------------------------------------------------------------- helpers

/** Everything a check opened (HTTP requests, WebSockets); torn down after each check. */
const live = new Set();

/** Rejects with "WHAT: timed out after MS ms" unless `promise` settles first. */
function deadline(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function assert(cond, why) {
  if (!cond) throw new Error(why);
}

function show(s) {
  return JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}...(${s.length} chars)` : s);
}

function query(extra = '', transport = 'polling') {
  return `EIO=4&transport=${transport}${extra}`;
}

/**
 * One HTTP request on its own connection (unless `agent` is given). Resolves with
 * {status, headers, body} once the response is complete; rejects on a connection error before
 * any response. `body` may be a string or Buffer; `partial: true` leaves the request open and
 * returns {req, done} so the caller can finish it later.
 */
function request(method, qs, { body, headers = {}, agent = false, partial = false } = {}) {
  const url = `${HTTP_BASE}?${qs}`;
  let req;
  const done = new Promise((resolve, reject) => {
    req = http.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      let settled = false;
      const finish = () => {
        if (settled) return;
        settled = true;
        live.delete(handle);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'),
          reused: req.reusedSocket });
      };
      res.on('data', (c) => chunks.push(c));
      res.on('end', finish);
      res.on('close', finish); // server closed after the headers: keep what arrived
      res.on('error', () => {});
    });
    req.on('error', (err) => {
      live.delete(handle);
      reject(new Error(`${method} ?${qs}: ${err.code ?? err.message}`));
    });
  });
  const handle = { dispose: () => req.destroy() };
  live.add(handle);
  if (partial) return { req, done };
  if (body !== undefined) req.end(body);
  else req.end();
  return done;
}

const get = (sid, extra = '') => request('GET', query(`&sid=${sid}${extra}`));
const post = (sid, body, headers = { 'Content-Type': 'text/plain;charset=UTF-8' }) =>
  request('POST', query(`&sid=${sid}`), { body, headers });

/** A round trip that changes no session: everything sent before it has reached the server. */
async function barrier() {
  await request('GET', query('&sid=barrier0000000000000'));
}

/**
 * Parses an open packet. Only the handshake checks pass `upgrades` and check every field; the
 * other checks need just the sid, so one handshake mistake does not fail the whole suite.
 */
function parseOpen(text, upgrades) {
  assert(text.startsWith('0'), `open packet must start with "0", got ${show(text)}`);
  let open;
  try {
    open = JSON.parse(text.slice(1));
  } catch {
    throw new Error(`open packet is not JSON: ${show(text)}`);
  }
  assert(typeof open?.sid === 'string' && open.sid !== '', `open packet without a sid: ${show(text)}`);
  if (upgrades === undefined) return open;
  const keys = Object.keys(open).join(',');
  assert(keys === 'sid,upgrades,pingInterval,pingTimeout,maxPayload',
    `open packet keys must be sid,upgrades,pingInterval,pingTimeout,maxPayload in that order, got ${keys}`);
  assert(typeof open.sid === 'string' && SID_RE.test(open.sid), `sid must be 20 chars of [A-Za-z0-9_-], got ${JSON.stringify(open.sid)}`);
  assert(JSON.stringify(open.upgrades) === JSON.stringify(upgrades),
    `upgrades must be ${JSON.stringify(upgrades)}, got ${JSON.stringify(open.upgrades)}`);
  assert(open.pingInterval === PING_INTERVAL, `pingInterval must be ${PING_INTERVAL}, got ${open.pingInterval}`);
  assert(open.pingTimeout === PING_TIMEOUT, `pingTimeout must be ${PING_TIMEOUT}, got ${open.pingTimeout}`);
  assert(open.maxPayload === MAX_PAYLOAD, `maxPayload must be ${MAX_PAYLOAD}, got ${open.maxPayload}`);
  return open;
}

/** Polling handshake; returns the session id. */
async function handshake() {
  const res = await request('GET', query());
  assert(res.status === 200, `handshake: status ${res.status}, body ${show(res.body)}`);
  return parseOpen(res.body).sid;
}

function expectStatus(res, status, what) {
  assert(res.status === status, `${what}: want status ${status}, got ${res.status} body ${show(res.body)}`);
}

function expectError(res, status, code, message, what) {
  expectStatus(res, status, what);
  const want = JSON.stringify({ code, message });
  assert(res.body === want, `${what}: want body ${want}, got ${show(res.body)}`);
  const type = res.headers['content-type'] ?? '';
  assert(type.toLowerCase().startsWith('application/json'), `${what}: want Content-Type application/json, got ${JSON.stringify(type)}`);
}

async function expectGone(sid, what) {
  const res = await get(sid);
  assert(res.status === 400, `${what}: the session should be closed, but a GET got ${res.status} ${show(res.body)}`);
}

/** One GET; answers each ping in it with a POST "3" and returns the other packets. */
async function pollOnce(sid) {
  const res = await get(sid);
  expectStatus(res, 200, 'GET');
  const packets = [];
  for (const p of res.body.split(SEP)) {
    if (p === '2') expectStatus(await post(sid, '3'), 200, 'POST "3"');
    else packets.push(p);
  }
  return packets;
}

/** GETs until `count` packets other than pings have arrived (within `ms`); returns them in order. */
async function pollPackets(sid, count, ms = REPLY_MS, packets = []) {
  const end = Date.now() + ms;
  while (packets.length < count) {
    assert(Date.now() < end, `want ${count} packets within ${ms} ms, got ${show(packets.join(SEP))}`);
    packets.push(...await pollOnce(sid));
  }
  return packets;
}

/**
 * A WebSocket client that queues every frame as it arrives (`ws` emits all frames of one TCP read
 * synchronously; a server may coalesce packets), so none is lost between waits. With `autoPong`
 * (the default) every "2" is answered with "3" at once and still queued.
 */
class Conn {
  constructor(extra = '', { autoPong = true, qs = query(extra, 'websocket') } = {}) {
    this.frames = [];
    this.waiters = [];
    this.closeInfo = null;
    this.autoPong = autoPong;
    this.ws = new WebSocket(`${WS_BASE}?${qs}`, { perMessageDeflate: false });
    live.add(this);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', (err) => {
        const m = /Unexpected server response: (\d+)/.exec(err.message);
        reject(Object.assign(new Error(`WebSocket refused: ${err.message}`), { status: m ? Number(m[1]) : null }));
      });
    });
    this.opened.catch(() => {});
    this.ws.on('error', () => {});
    this.ws.on('message', (data, isBinary) => {
      const frame = isBinary ? { binary: true, data: Buffer.from(data) } : { binary: false, data: data.toString('utf8') };
      if (this.autoPong && frame.data === '2' && this.ws.readyState === WebSocket.OPEN) this.ws.send('3');
      const w = this.waiters.shift();
      if (w) w.resolve(frame);
      else this.frames.push(frame);
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        for (const w of this.waiters.splice(0)) w.reject(new Error(`connection closed (code ${code}) while waiting for a frame`));
        resolve(this.closeInfo);
      });
    });
  }

  /** Next frame, whatever it is. */
  next(ms = CHECK_TIMEOUT_MS, what = 'frame') {
    if (this.frames.length) return Promise.resolve(this.frames.shift());
    if (this.closeInfo) return Promise.reject(new Error(`connection closed (code ${this.closeInfo.code}) before a ${what}`));
    const waiter = {};
    const p = new Promise((resolve, reject) => Object.assign(waiter, { resolve, reject }));
    this.waiters.push(waiter);
    return deadline(p, ms, `waiting for a ${what}`).catch((err) => {
      this.waiters = this.waiters.filter((w) => w !== waiter); // a later frame must not vanish
      throw err;
    });
  }

  /** Next frame that is not a ping ("2", answered already) or a noop ("6"). */
  nextMessage(ms = REPLY_MS) {
    return this.nextWhere((f) => f.binary || (f.data !== '2' && f.data !== '6'), ms, 'message');
  }

  /** Next frame for which `keep(frame)` is true, dropping the others; `what` names it on timeout. */
  async nextWhere(keep, ms, what) {
    const end = Date.now() + ms;
    for (;;) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${ms} ms`);
      const f = await this.next(left, what).catch((err) => {
        throw /timed out/.test(err.message) ? new Error(`no ${what} within ${ms} ms`) : err;
      });
      if (keep(f)) return f;
    }
  }

  /** Resolves once the server has closed the connection, within `ms`. */
  async expectClosed(ms, what) {
    await deadline(this.closed, ms, `${what}: the connection was not closed`);
  }

  send(data) {
    this.ws.send(data);
  }

  dispose() {
    this.ws.terminate();
  }
}

/** Opens a WebSocket session and checks its open packet; returns the Conn. */
async function wsSession(opts, strict = false) {
  const c = new Conn('', opts);
  await c.opened;
  const f = await c.next(CHECK_TIMEOUT_MS, 'open packet');
  assert(!f.binary, 'open packet came as a binary frame');
  c.sid = parseOpen(f.data, strict ? [] : undefined).sid;
  return c;
}

/** Opens a WebSocket for `sid` and performs the probe; returns the Conn (upgrade not completed). */
async function probe(sid) {
  const c = new Conn(`&sid=${sid}`);
  await c.opened;
  c.send('2probe');
  const f = await c.next(CHECK_TIMEOUT_MS, '"3probe"');
  assert(!f.binary && f.data === '3probe', `first frame after "2probe" must be "3probe", got ${f.binary ? 'a binary frame' : show(f.data)}`);
  return c;
}

/** Polling session upgraded to WebSocket (no GET pending during the probe). */
async function upgraded() {
  const sid = await handshake();
  const c = await probe(sid);
  c.send('5');
  return { sid, c };
}

async function expectWsEcho(c, text) {
  c.send(text);
  const f = await c.nextMessage();
  assert(!f.binary && f.data === text, `want ${show(text)} echoed as text, got ${f.binary ? 'a binary frame' : show(f.data)}`);
}

// ---------------------------------------------------------------- checks

const checks = [];
function check(name, fn) {
  checks.push({ name, fn });
}

// -- handshake and validation

check('polling handshake', async () => {
  const res = await request('GET', query());
  expectStatus(res, 200, 'handshake');
  const type = res.headers['content-type'] ?? '';
  assert(type.toLowerCase() === 'text/plain; charset=utf-8', `Content-Type must be "text/plain; charset=UTF-8", got ${JSON.stringify(type)}`);
  parseOpen(res.body, ['websocket']);
});

check('polling response headers', async () => {
  const sid = await handshake();
  const p = await post(sid, '4hi');
  expectStatus(p, 200, 'POST');
  assert(p.body === 'ok', `POST body must be "ok", got ${show(p.body)}`);
  assert((p.headers['content-type'] ?? '').toLowerCase().startsWith('text/html'), `POST Content-Type must be text/html, got ${p.headers['content-type']}`);
  const g = await get(sid);
  expectStatus(g, 200, 'GET');
  assert((g.headers['content-type'] ?? '').toLowerCase() === 'text/plain; charset=utf-8', `GET Content-Type must be text/plain; charset=UTF-8, got ${g.headers['content-type']}`);
  assert(g.headers['cache-control'] === 'no-store', `GET Cache-Control must be no-store, got ${g.headers['cache-control']}`);
});

check('websocket handshake', async () => {
  await wsSession({}, true);
});

check('bad EIO (polling)', async () => {
  for (const eio of ['', 'EIO=abc&', 'EIO=3&']) {
    const res = await request('GET', `${eio}transport=polling`);
    expectError(res, 400, 5, 'Unsupported protocol version', `?${eio}transport=polling`);
  }
});

// Node's engine.io checks EIO only after the 101 (it then writes a raw "HTTP/1.1 400" into the
// upgraded stream and drops the TCP connection); refusing the upgrade with 400 is the clean form.
check('bad EIO (websocket)', async () => {
  for (const eio of ['', 'EIO=abc&', 'EIO=3&']) {
    const bad = new Conn('', { autoPong: false, qs: `${eio}transport=websocket` });
    const err = await bad.opened.then(() => null, (e) => e);
    if (err) {
      assert(err.status === 400, `?${eio}transport=websocket: want HTTP 400, got ${err.message}`);
      continue;
    }
    await bad.expectClosed(REPLY_MS, `?${eio}transport=websocket was accepted`);
    assert(!bad.frames.some((f) => !f.binary && f.data.startsWith('0')),
      `?${eio}transport=websocket: the server sent an open packet`);
  }
});

check('missing or unknown transport', async () => {
  expectError(await request('GET', 'EIO=4'), 400, 0, 'Transport unknown', 'no transport');
  expectError(await request('GET', 'EIO=4&transport=abc'), 400, 0, 'Transport unknown', 'transport=abc');
});

check('websocket transport without Upgrade', async () => {
  expectError(await request('GET', query('', 'websocket')), 400, 3, 'Bad request', 'plain GET ?transport=websocket');
});

check('handshake with POST or PUT', async () => {
  for (const method of ['POST', 'PUT']) {
    expectError(await request(method, query(), { body: '4x' }), 400, 2, 'Bad handshake method', method);
  }
});

check('unknown sid', async () => {
  expectError(await get('AAAAAAAAAAAAAAAAAAAA'), 400, 1, 'Session ID unknown', 'GET');
  expectError(await post('AAAAAAAAAAAAAAAAAAAA', '4x'), 400, 1, 'Session ID unknown', 'POST');
  const c = new Conn('&sid=AAAAAAAAAAAAAAAAAAAA');
  const err = await c.opened.then(() => null, (e) => e);
  assert(err, 'WebSocket with an unknown sid was accepted');
  assert(err.status === 400, `WebSocket with an unknown sid: want HTTP 400, got ${err.message}`);
});

check('CORS', async () => {
  const origin = 'http://example.com';
  const pre = await request('OPTIONS', query(), {
    headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
  });
  expectStatus(pre, 204, 'preflight');
  const acao = pre.headers['access-control-allow-origin'];
  assert(acao === '*' || acao === origin, `preflight: Access-Control-Allow-Origin must be * or the origin, got ${acao}`);
  const methods = (pre.headers['access-control-allow-methods'] ?? '').toUpperCase().split(/\s*,\s*/);
  assert(methods.includes('GET') && methods.includes('POST'), `preflight: Access-Control-Allow-Methods must list GET and POST, got ${pre.headers['access-control-allow-methods']}`);
  const res = await request('GET', query(), { headers: { Origin: origin } });
  expectStatus(res, 200, 'GET with Origin');
  const acao2 = res.headers['access-control-allow-origin'];
  assert(acao2 === '*' || acao2 === origin, `GET: Access-Control-Allow-Origin must be * or the origin, got ${acao2}`);
});

// -- polling

check('polling echo', async () => {
  const sid = await handshake();
  const p = await post(sid, '4hello');
  expectStatus(p, 200, 'POST');
  assert(p.body === 'ok', `POST body must be "ok", got ${show(p.body)}`);
  const got = await pollPackets(sid, 1);
  assert(got.join(SEP) === '4hello', `want "4hello", got ${show(got.join(SEP))}`);
});

check('polling multi-packet payload', async () => {
  const sid = await handshake();
  expectStatus(await post(sid, `4a${SEP}4b${SEP}4c`), 200, 'POST');
  const got = await pollPackets(sid, 3, REPLY_MS, await pollOnce(sid));
  assert(got.join(SEP) === `4a${SEP}4b${SEP}4c`, `want 4a,4b,4c in order, got ${show(got.join(SEP))}`);
});

check('polling binary round trip', async () => {
  const sid = await handshake();
  expectStatus(await post(sid, `bAQIDBA==${SEP}4text`), 200, 'POST');
  const got = await pollPackets(sid, 2);
  assert(got.join(SEP) === `bAQIDBA==${SEP}4text`, `want "bAQIDBA==\\x1e4text", got ${show(got.join(SEP))}`);
});

check('polling keep-alive connection', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  live.add({ dispose: () => agent.destroy() });
  const hs = await request('GET', query(), { agent });
  expectStatus(hs, 200, 'handshake');
  const { sid } = parseOpen(hs.body);
  const p = await request('POST', query(`&sid=${sid}`), { agent, body: '4same' });
  expectStatus(p, 200, 'POST');
  const g = await request('GET', query(`&sid=${sid}`), { agent });
  expectStatus(g, 200, 'GET');
  assert(g.body.split(SEP).includes('4same'), `want "4same", got ${show(g.body)}`);
  assert(p.reused && g.reused, 'the server did not keep the HTTP/1.1 connection open between requests');
});

check('polling undecodable packet closes', async () => {
  const sid = await handshake();
  const p = await post(sid, 'abc').catch(() => null);
  assert(p === null || p.status === 200 || p.status === 400, `POST "abc": want 200, 400 or an aborted request, got ${p?.status}`);
  await expectGone(sid, 'after POST "abc"');
});

check('polling empty POST closes', async () => {
  const sid = await handshake();
  const p = await post(sid, '').catch(() => null);
  assert(p === null || p.status === 200 || p.status === 400, `empty POST: want 200, 400 or an aborted request, got ${p?.status}`);
  await expectGone(sid, 'after an empty POST');
});

check('polling octet-stream POST', async () => {
  const sid = await handshake();
  const p = await post(sid, Buffer.from([1, 2, 3, 4]), { 'Content-Type': 'application/octet-stream' }).catch(() => null);
  assert(p === null || p.status === 400, `POST application/octet-stream: want 400, got ${p?.status} ${show(p?.body ?? '')}`);
  await expectGone(sid, 'after an octet-stream POST');
});

/**
 * Runs a check that needs its requests in before the session's first ping (300 ms after the
 * handshake) again, from a new handshake, when a slow machine let the ping in first (the
 * attempt returns PINGED); up to three attempts.
 */
const PINGED = Symbol('pinged');
async function beforeFirstPing(attempt) {
  for (let i = 1; (await attempt()) === PINGED; i++)
    assert(i < 3, 'the first ping came before the requests three times running');
}

check('polling concurrent GETs', () => beforeFirstPing(async () => {
  const sid = await handshake();
  const [a, b] = await deadline(Promise.all([get(sid), get(sid, '&t=second')]), REPLY_MS, 'two concurrent GETs');
  if (a.body === '2' || b.body === '2') return PINGED;   // the ping answered a GET before the other came
  const [ok, bad] = a.status === 200 ? [a, b] : [b, a];
  assert(ok.status === 200 && ok.body === '1', `one GET must complete 200 "1", got ${a.status} ${show(a.body)} and ${b.status} ${show(b.body)}`);
  assert(bad.status === 400 || bad.status === 500, `the other GET must get 400 (or 500), got ${bad.status} ${show(bad.body)}`);
  await expectGone(sid, 'after concurrent GETs');
}));

check('polling overlapping POSTs', async () => {
  const sid = await handshake();
  const first = request('POST', query(`&sid=${sid}`), { partial: true, headers: { 'Content-Type': 'text/plain;charset=UTF-8', 'Content-Length': '6' } });
  first.done.catch(() => {});
  first.req.write('4he');
  await barrier();
  const second = await post(sid, '4x').catch(() => null);
  assert(second === null || second.status === 400, `second POST while one is in flight: want 400, got ${second?.status} ${show(second?.body ?? '')}`);
  first.req.end('llo');
  await deadline(first.done, REPLY_MS, 'first POST').catch(() => {});
  await expectGone(sid, 'after overlapping POSTs');
});

check('polling POST above maxPayload', async () => {
  const sid = await handshake();
  const body = '4' + 'a'.repeat(MAX_PAYLOAD); // MAX_PAYLOAD + 1 bytes
  const res = await post(sid, body);
  expectStatus(res, 413, `POST of ${body.length} bytes`);
});

check('polling client close', () => beforeFirstPing(async () => {
  const sid = await handshake();
  const pending = get(sid);
  await barrier();
  const p = await post(sid, '1');
  const g = await deadline(pending, REPLY_MS, 'the GET pending when "1" was posted');
  if (g.body === '2') return PINGED;   // the ping answered the GET before the POST came
  expectStatus(p, 200, 'POST "1"');
  expectStatus(g, 200, 'pending GET');
  assert(g.body === '6', `pending GET must complete with "6", got ${show(g.body)}`);
  await expectGone(sid, 'after POST "1"');
}));

// -- heartbeat

check('heartbeat (polling)', async () => {
  const sid = await handshake();
  let since = Date.now();
  for (let i = 0; i < 3; i++) {
    const g = await get(sid);
    const waited = Date.now() - since;
    expectStatus(g, 200, `GET ${i + 1}`);
    assert(g.body === '2', `cycle ${i + 1}: want "2", got ${show(g.body)}`);
    assert(waited >= PING_INTERVAL - 100 && waited <= PING_INTERVAL + MARGIN,
      `cycle ${i + 1}: ping came after ${waited} ms, want about ${PING_INTERVAL}`);
    expectStatus(await post(sid, '3'), 200, 'POST "3"');
    since = Date.now();
  }
});

check('heartbeat (websocket)', async () => {
  const c = await wsSession({ autoPong: false });
  let since = Date.now();
  for (let i = 0; i < 3; i++) {
    const f = await c.next(PING_INTERVAL + MARGIN, `ping ${i + 1}`);
    const waited = Date.now() - since;
    assert(!f.binary && f.data === '2', `cycle ${i + 1}: want "2", got ${f.binary ? 'a binary frame' : show(f.data)}`);
    assert(waited >= PING_INTERVAL - 100, `cycle ${i + 1}: ping came after ${waited} ms, want about ${PING_INTERVAL}`);
    c.send('3');
    since = Date.now();
  }
});

check('heartbeat under traffic (websocket)', async () => {
  const c = await wsSession({ autoPong: false });
  const timer = setInterval(() => c.ws.readyState === WebSocket.OPEN && c.send('4tick'), 50);
  live.add({ dispose: () => clearInterval(timer) });
  for (let i = 0; i < 2; i++) {
    const isPing = (f) => {
      assert(!f.binary && (f.data === '2' || f.data === '4tick'), `unexpected frame ${f.binary ? '(binary)' : show(f.data)}`);
      return f.data === '2';
    };
    await c.nextWhere(isPing, PING_INTERVAL + MARGIN, `ping ${i + 1} under traffic`);
    c.send('3');
  }
});

check('no pong closes (websocket)', async () => {
  const c = await wsSession({ autoPong: false });
  const f = await c.next(PING_INTERVAL + MARGIN, 'ping');
  assert(!f.binary && f.data === '2', `want "2", got ${f.binary ? 'a binary frame' : show(f.data)}`);
  await c.expectClosed(PING_TIMEOUT + MARGIN, 'no pong');
});

check('no pong closes (polling)', async () => {
  const sid = await handshake();
  const first = await get(sid); // held until the server's ping
  expectStatus(first, 200, 'GET');
  assert(first.body === '2', `want the ping "2", got ${show(first.body)}`);
  // Never answered: the session must end before the next ping. A GET waits for whichever comes
  // first (a held GET is answered when the session closes); once it is gone, a GET gets 400.
  for (;;) {
    const res = await get(sid);
    if (res.status === 400) break;
    expectStatus(res, 200, 'GET');
    assert(!res.body.split(SEP).includes('2'), `a ping went unanswered, yet the server pinged again: ${show(res.body)}`);
  }
});

check('client ping closes (websocket)', async () => {
  const c = await wsSession();
  c.send('2');
  await c.expectClosed(REPLY_MS, 'after client "2"');
});

// -- websocket

check('websocket text echo', async () => {
  const c = await wsSession();
  await expectWsEcho(c, '4hello');
  await expectWsEcho(c, '4héllo wörld ✓');
});

check('websocket binary echo', async () => {
  const c = await wsSession();
  c.send(Buffer.from([1, 2, 3, 4]));
  const f = await c.nextMessage();
  assert(f.binary, `want a binary frame, got text ${show(f.data)}`);
  assert(f.data.equals(Buffer.from([1, 2, 3, 4])), `want bytes 01 02 03 04, got ${f.data.toString('hex')}`);
});

check('websocket invalid packet closes', async () => {
  const c = await wsSession();
  c.send('abc');
  await c.expectClosed(REPLY_MS, 'after "abc"');
});

check('websocket message above maxPayload closes', async () => {
  const c = await wsSession();
  c.send('4' + 'a'.repeat(MAX_PAYLOAD));
  await c.expectClosed(2000, `after a ${MAX_PAYLOAD + 1}-byte message`);
});

// -- upgrade

check('upgrade', async () => {
  const sid = await handshake();
  const c = await probe(sid);
  // The GET pending during the upgrade must be released with a noop.
  const start = Date.now();
  for (;;) {
    const g = await deadline(get(sid), REPLY_MS, 'GET pending during the upgrade (want "6")');
    expectStatus(g, 200, 'GET during the upgrade');
    const packets = g.body.split(SEP);
    if (packets.includes('6')) break;
    assert(packets.every((p) => p === '2'), `GET during the upgrade: want "6", got ${show(g.body)}`);
    expectStatus(await post(sid, '3'), 200, 'POST "3"');
    assert(Date.now() - start < REPLY_MS, `no noop within ${REPLY_MS} ms`);
  }
  c.send('5');
  await expectWsEcho(c, '4hello');
  c.send(Buffer.from([9, 8]));
  const f = await c.nextMessage();
  assert(f.binary && f.data.equals(Buffer.from([9, 8])), 'binary echo after the upgrade must be a binary frame 09 08');
});

check('upgrade flushes buffered packets', async () => {
  const sid = await handshake();
  const c = await probe(sid);
  expectStatus(await post(sid, '4buffered'), 200, 'POST during the upgrade');
  c.send('5');
  const f = await c.nextMessage();
  assert(!f.binary && f.data === '4buffered', `want "4buffered" on the WebSocket after "5", got ${f.binary ? 'binary' : show(f.data)}`);
});

check('polling after upgrade', async () => {
  const { sid, c } = await upgraded();
  await expectWsEcho(c, '4up'); // the server has seen "5"
  expectError(await get(sid), 400, 3, 'Bad request', 'GET after upgrade');
  await expectWsEcho(c, '4still');
});

check('second websocket after upgrade', async () => {
  const { sid, c } = await upgraded();
  await expectWsEcho(c, '4up');
  const c2 = new Conn(`&sid=${sid}`);
  const refused = await c2.opened.then(() => false, () => true);
  if (!refused) {
    c2.send('2probe');
    await c2.expectClosed(REPLY_MS, 'second WebSocket for an upgraded session');
    assert(!c2.frames.some((f) => !f.binary && f.data === '3probe'), 'second WebSocket got "3probe"');
  }
  await expectWsEcho(c, '4still');
});

check('upgrade aborted by a non-probe packet', async () => {
  const sid = await handshake();
  const c = new Conn(`&sid=${sid}`);
  await c.opened;
  c.send('4nope');
  await c.expectClosed(REPLY_MS, 'probing WebSocket after "4nope"');
  expectStatus(await post(sid, '4still'), 200, 'POST after the aborted upgrade');
  const got = await pollPackets(sid, 1);
  assert(got.join(SEP) === '4still', `polling must keep working: want "4still", got ${show(got.join(SEP))}`);
});

// Stricter than the reference server, which keeps such a session until its heartbeat fails: once
// "3probe" has told the client to pause polling, a probe that goes away leaves the client no way to
// go on, so the session ends at once (a client killed mid-upgrade is noticed like one killed while
// its GET is held).
check('a probe gone after "3probe" ends the session', async () => {
  const sid = await handshake();
  const c = await probe(sid);
  c.ws.close(1000);
  await c.expectClosed(CHECK_TIMEOUT_MS, 'probe closed by the client');
  await expectGone(sid, 'after the answered probe went away');
});

check('a probe gone before "3probe" leaves the session on polling', async () => {
  const sid = await handshake();
  const c = new Conn(`&sid=${sid}`);
  await c.opened;
  c.ws.close(1000);
  await c.expectClosed(CHECK_TIMEOUT_MS, 'probe closed by the client');
  expectStatus(await post(sid, '4still'), 200, 'POST after the probe went away');
  const got = await pollPackets(sid, 1);
  assert(got.join(SEP) === '4still', `polling must keep working: want "4still", got ${show(got.join(SEP))}`);
});

// ---------------------------------------------------------------- runner

let passed = 0;
let failed = 0;
for (const { name, fn } of checks) {
  try {
    await deadline(Promise.resolve().then(fn), CHECK_TIMEOUT_MS, 'check');
    passed++;
    process.stdout.write(`ok ${name}\n`);
  } catch (err) {
    failed++;
    process.stdout.write(`FAIL ${name}: ${err.message}\n`);
  } finally {
    for (const x of live) x.dispose();
    live.clear();
  }
}
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
