// mixed_cluster.mjs KIND_A PORT_A KIND_B PORT_B
//
// Interop test: two nodes of one Socket.IO cluster (one Redis, the adapter's default key), each
// serving the protocol of node_cluster_peer.mjs on "/" and "/chat". KIND is `node`
// (node_cluster_peer.mjs: @socket.io/redis-adapter) or `cpp` (cluster_server: gw::redis::cluster).
// socket.io-client clients connect to each node directly; on a `cpp` node a NestJS-WsAdapter client
// (ws://HOST:PORT/, {event, data, id} envelopes) joins in too.
//
// Checked, in both directions between the nodes:
//   - nsp.to(room).emit from a client on one node reaches the room's members on both nodes exactly
//     once, and nobody else;
//   - socket.to(room) leaves the sender out, socket.broadcast reaches everybody else in the
//     namespace;
//   - an event to a socket id reaches that socket on the other node only;
//   - "/" and "/chat" stay apart although both have a room of the same name;
//   - fetchSockets (ours: target::ids) and its count, asked on either node, include the sockets of
//     the other node (every node must answer the adapter's requests);
//   - serverSideEmit (node peers only: our node has no server-side events): prints
//     "server-event-token TOKEN", which the driver looks for in the other peer's stdout.
//
// "Exactly once" and "not at all" never sleep: after each action the sender's node publishes a
// fence (a `say` to room "all", which every client joined) in each namespace, the action's
// namespace first; one node's publications reach every subscriber in order, so what a client got
// before its fence is all the action will ever give it. Over a Redis Cluster (REDIS_CLUSTER=1)
// that order holds per channel only (each master is a connection of its own), so a client reads
// until it has both its fence and as many messages as expected, in either order; anything more
// shows up in a later round, the last one at the latest.
//
// Prints "PASS name" or "FAIL name: why" per scenario, then "N passed, M failed"; exit status 0 iff
// nothing failed. Every wait is limited by CLUSTER_TIMEOUT_MS (default 5000); requests that make the
// adapter ask the other nodes get 3 s more than the adapter's own 5 s limit.
import process from 'node:process';
import { isDeepStrictEqual } from 'node:util';
import { io } from 'socket.io-client';
import { WebSocket } from 'ws';

function usage(msg) {
  if (msg) process.stderr.write(`mixed_cluster.mjs: ${msg}\n`);
  process.stderr.write('usage: node mixed_cluster.mjs node|cpp PORT_A node|cpp PORT_B\n');
  process.exit(2);
}
const argv = process.argv.slice(2);
if (argv.length !== 4) usage();
const nodes = [];
for (const [name, kind, port] of [['A', argv[0], argv[1]], ['B', argv[2], argv[3]]]) {
  if (kind !== 'node' && kind !== 'cpp') usage(`bad kind '${kind}'`);
  if (!/^[0-9]+$/.test(port) || Number(port) < 1 || Number(port) > 65535) usage(`bad port '${port}'`);
  nodes.push({ name, kind, port: Number(port) });
}
const [A, B] = nodes;
const TIMEOUT_MS = Number(process.env.CLUSTER_TIMEOUT_MS) || 5000;
const ACROSS_MASTERS = process.env.REDIS_CLUSTER === '1';
const REQUEST_MS = Math.max(TIMEOUT_MS, 8000);

process.on('unhandledRejection', () => {});
const show = (v) => JSON.stringify(v);

function withTimeout(promise, what, onTimeout = () => {}, ms = TIMEOUT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** What a client received, in order: {event, data} items; waiters take them one by one. */
class Inbox {
  constructor(name) {
    this.name = name;
    this.queue = [];
    this.waiters = [];
    this.gone = null;
  }

  push(item) {
    const w = this.waiters.shift();
    if (w) w.resolve(item);
    else this.queue.push(item);
  }

  end(why) {
    this.gone = why;
    for (const w of this.waiters.splice(0)) w.reject(new Error(`${this.name}: ${why}`));
  }

  next(what) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.gone) return Promise.reject(new Error(`${this.name}: ${this.gone} (waiting for ${what})`));
    let waiter;
    const p = new Promise((resolve, reject) => {
      waiter = { resolve, reject };
      this.waiters.push(waiter);
    });
    return withTimeout(p, `${what} on ${this.name}`, () => {
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
    });
  }
}

const allClients = [];

/** A socket.io-client socket. */
class SioClient extends Inbox {
  constructor(name, node, nsp, opts) {
    super(name);
    this.node = node;
    this.nsp = nsp;
    this.sock = io(`http://127.0.0.1:${node.port}${nsp === '/' ? '' : nsp}`, { reconnection: false, ...opts });
    allClients.push(this);
    this.sock.onAny((event, ...args) => this.push({ event, data: args[0], extra: args.length - 1 }));
    this.sock.on('disconnect', (reason) => this.end(`disconnected (${reason})`));
  }

  async open() {
    await withTimeout(new Promise((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('connect_error', (err) => reject(new Error(`${this.name}: connect_error ${err.message}`)));
    }), `${this.name} to connect`);
    this.id = this.sock.id;
    return this;
  }

  request(event, data, ms = REQUEST_MS) {
    const args = data === undefined ? [] : [data];
    return this.sock.timeout(ms).emitWithAck(event, ...args)
      .catch((err) => { throw new Error(`${this.name}: no ack of ${event} (${err.message})`); });
  }

  close() { this.sock.disconnect(); }
}

/** A NestJS WsAdapter client: requests carry an id and are answered with {event, data, id}. */
class WsClient extends Inbox {
  constructor(name, node, nsp) {
    super(name);
    this.node = node;
    this.nsp = nsp;
    this.pending = new Map();
    this.seq = 0;
    this.ws = new WebSocket(`ws://127.0.0.1:${node.port}${nsp}`);
    allClients.push(this);
    this.ws.on('message', (bytes) => {
      let obj;
      try { obj = JSON.parse(bytes.toString('utf8')); } catch { obj = { event: '(unparsable)', data: bytes.toString('utf8') }; }
      const waiter = obj.id !== undefined ? this.pending.get(obj.id) : undefined;
      if (waiter && obj.event === waiter.event) {
        this.pending.delete(obj.id);
        waiter.resolve(obj.data);
      } else {
        this.push({ event: obj.event, data: obj.data, extra: 0 });
      }
    });
    this.ws.on('close', (code) => this.end(`closed (${code})`));
    this.ws.on('error', () => {});
  }

  async open() {
    await withTimeout(new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('unexpected-response', (req, res) => reject(new Error(`${this.name}: HTTP ${res.statusCode}`)));
      this.ws.once('error', (err) => reject(new Error(`${this.name}: ${err.message}`)));
    }), `${this.name} to connect`);
    return this;
  }

  request(event, data, ms = REQUEST_MS) {
    const id = `${this.name}-${++this.seq}`;
    const answer = new Promise((resolve) => this.pending.set(id, { event, resolve }));
    this.ws.send(JSON.stringify(data === undefined ? { event, id } : { event, data, id }));
    return withTimeout(answer, `the reply to ${event} on ${this.name}`, () => this.pending.delete(id), ms);
  }

  close() { this.ws.close(1000); }
}

// ---------------------------------------------------------------- the clients

const c = {};          // by name
const members = {};    // namespace -> clients
const fencers = {};    // namespace -> node name -> the client that sends that node's fences

async function setUp() {
  const sio = (name, node, nsp, opts = {}) => new SioClient(name, node, nsp, opts).open();
  c.a1 = await sio('a1', A, '/', { auth: { room: 'r' } });    // in r from the handshake's auth
  c.a2 = await sio('a2', A, '/');
  c.b1 = await sio('b1', B, '/', { query: { room: 'r' } });   // in r from the query
  c.b2 = await sio('b2', B, '/');
  c.ca = await sio('ca', A, '/chat');
  c.cb = await sio('cb', B, '/chat');
  const ws = [A, B].filter((n) => n.kind === 'cpp').map((n) => new WsClient(`ws${n.name}`, n, '/').open());
  for (const w of await Promise.all(ws)) c[w.name] = w;
  for (const cl of Object.values(c)) {
    if ((await cl.request('join', 'all')) !== true) throw new Error(`${cl.name}: join all not acked true`);
  }
  for (const name of ['ca', 'cb', ...Object.keys(c).filter((n) => n.startsWith('ws'))]) {
    if ((await c[name].request('join', 'r')) !== true) throw new Error(`${name}: join r not acked true`);
  }
  members['/'] = Object.values(c).filter((cl) => cl.nsp === '/');
  members['/chat'] = [c.ca, c.cb];
  fencers['/'] = { A: c.a2, B: c.b2 };
  fencers['/chat'] = { A: c.ca, B: c.cb };
}

// ---------------------------------------------------------------- checking a round

let fenceSeq = 0;

/**
 * After an action sent by `sender`: fences each namespace from the sender's node (its own namespace
 * first) and checks that what each client got before its fence is exactly want.get(client) (none
 * when absent).
 */
async function settle(sender, want) {
  const order = sender.nsp === '/' ? ['/', '/chat'] : ['/chat', '/'];
  const problems = [];
  for (const nsp of order) {
    const fencer = fencers[nsp][sender.node.name];
    const text = `fence-${++fenceSeq}`;
    if ((await fencer.request('say', { room: 'all', text })) !== true) throw new Error(`${fencer.name}: say not acked true`);
    const fence = { event: 'said', data: { room: 'all', text, from: fencer.id, nsp } };
    await Promise.all(members[nsp].map(async (cl) => {
      const got = [];
      const expected = want.get(cl) ?? [];
      let fenced = false;
      while (!fenced || (ACROSS_MASTERS && got.length < expected.length)) {
        const item = await cl.next(fenced ? `${expected.length - got.length} more after fence ${text}` : `fence ${text}`);
        if (!fenced && isFence(item, fence, cl)) {
          fenced = true;
          continue;
        }
        got.push({ event: item.event, data: item.data });
        if (item.extra) problems.push(`${cl.name} got ${item.event} with ${item.extra + 1} arguments`);
      }
      if (!isDeepStrictEqual(got, expected)) {
        problems.push(`${cl.name} (node ${cl.node.name}, ${cl.nsp}) got ${show(got)}, expected ${show(expected)}`);
      }
    }));
  }
  if (problems.length) throw new Error(problems.join('; '));
}

/** A fence is recognised by its text; one from another sender is an error of its own. */
function isFence(item, fence, cl) {
  if (item.event !== 'said' || item.data?.room !== 'all' || item.data?.text !== fence.data.text) return false;
  if (!isDeepStrictEqual(item.data, fence.data)) {
    throw new Error(`${cl.name}: fence ${show(item.data)}, expected ${show(fence.data)}`);
  }
  return true;
}

const said = (room, text, from, nsp = '/') => ({ event: 'said', data: { room, text, from: from.id, nsp } });

// ---------------------------------------------------------------- scenarios

const scenarios = [];
const scenario = (name, fn) => scenarios.push({ name, fn });
const inR = () => [c.a1, c.b1, ...Object.values(c).filter((cl) => cl instanceof WsClient)];

for (const [from, node] of [['a1', A], ['b1', B]]) {
  scenario(`nsp.to(room) from ${from} on node ${node.name} (${node.kind}): the room's members on both nodes, once each; nobody else`, async () => {
    const sender = c[from];
    const text = `say from ${sender.name}`;
    if ((await sender.request('say', { room: 'r', text })) !== true) throw new Error('say not acked true');
    const m = said('r', text, sender);
    await settle(sender, new Map(inR().map((cl) => [cl, [m]])));
  });
}

for (const node of [A, B].filter((n) => n.kind === 'cpp')) {
  scenario(`a WsAdapter client on node ${node.name} (cpp) speaks to the room on both nodes, and both platforms hear it`, async () => {
    const sender = c[`ws${node.name}`];
    const text = `say from ${sender.name}`;
    if ((await sender.request('say', { room: 'r', text })) !== true) throw new Error('say not acked true');
    // The WsAdapter client does not know its socket id: learn it from what a1 got (a1 is in r),
    // then demand the same message everywhere.
    const first = await c.a1.next('the WsAdapter client\'s message');
    if (first.event !== 'said' || first.data?.text !== text) throw new Error(`a1 got ${show(first)} first`);
    c.a1.queue.unshift(first);
    const m = { event: 'said', data: { room: 'r', text, from: first.data.from, nsp: '/' } };
    await settle(sender, new Map(inR().map((cl) => [cl, [m]])));
  });
}

for (const from of ['a1', 'b1']) {
  scenario(`socket.to(room) from ${from}: the room's other members on both nodes, not the sender`, async () => {
    const sender = c[from];
    const text = `shout from ${sender.name}`;
    if ((await sender.request('shout', { room: 'r', text })) !== true) throw new Error('shout not acked true');
    const m = said('r', text, sender);
    await settle(sender, new Map(inR().filter((cl) => cl !== sender).map((cl) => [cl, [m]])));
  });
}

for (const from of ['b2', 'a2']) {
  scenario(`socket.broadcast from ${from}: everybody else in "/" on both nodes, nobody in "/chat"`, async () => {
    const sender = c[from];
    const text = `announce from ${sender.name}`;
    if ((await sender.request('announce', text)) !== true) throw new Error('announce not acked true');
    const m = { event: 'announced', data: { text, from: sender.id, nsp: '/' } };
    await settle(sender, new Map(members['/'].filter((cl) => cl !== sender).map((cl) => [cl, [m]])));
  });
}

for (const [from, to, where] of [['a2', 'b2', 'on the other node'], ['b2', 'a2', 'on the other node'], ['a1', 'a2', 'on the same node']]) {
  scenario(`to(socket id) from ${from} to ${to} ${where}: that socket only, once`, async () => {
    const sender = c[from];
    const text = `whisper from ${sender.name}`;
    if ((await sender.request('whisper', { to: c[to].id, text })) !== true) throw new Error('whisper not acked true');
    await settle(sender, new Map([[c[to], [{ event: 'whisper', data: { text, from: sender.id, nsp: '/' } }]]]));
  });
}

for (const from of ['ca', 'cb']) {
  scenario(`"/chat" room r from ${from}: its members on both nodes; "/" has a room r too and hears nothing`, async () => {
    const sender = c[from];
    const text = `say from ${sender.name}`;
    if ((await sender.request('say', { room: 'r', text })) !== true) throw new Error('say not acked true');
    const m = said('r', text, sender, '/chat');
    await settle(sender, new Map([[c.ca, [m]], [c.cb, [m]]]));
  });
}

for (const asker of ['a1', 'b1', 'ca']) {
  scenario(`fetchSockets asked on ${asker}'s node includes the other node's sockets`, async () => {
    const cl = c[asker];
    const room = 'r';
    const ids = await cl.request('fetch', room);
    if (!Array.isArray(ids)) throw new Error(`fetch answered ${show(ids)}`);
    const want = cl.nsp === '/' ? inR() : [c.ca, c.cb];
    const known = want.filter((w) => w instanceof SioClient).map((w) => w.id);
    const missing = known.filter((id) => !ids.includes(id));
    if (missing.length || ids.length !== want.length || new Set(ids).size !== ids.length) {
      throw new Error(`fetch ${room} gave ${show(ids)}, expected ${want.length} ids including ${show(known)}`);
    }
    const n = await cl.request('count');
    if (n !== members[cl.nsp].length) throw new Error(`count gave ${show(n)}, expected ${members[cl.nsp].length}`);
  });
}

scenario('serverSideEmit reaches the other node, both ways (checked by the driver in their stdout)', async () => {
  const token = `token-${process.pid}-${Date.now()}`;
  if ((await c.a1.request('server-emit', { token })) !== true) throw new Error('server-emit not acked true');
  // A fetchSockets goes on the same request channel after it: once answered, B has printed the event.
  let n = await c.a1.request('count');
  if (n !== members['/'].length) throw new Error(`count gave ${show(n)}`);
  process.stdout.write(`server-event-token ${token}\n`);
  const back = `back-${token}`;
  if ((await c.b1.request('server-emit', { token: back })) !== true) throw new Error('server-emit on B not acked true');
  n = await c.b1.request('count');
  if (n !== members['/'].length) throw new Error(`count on B gave ${show(n)}`);
  process.stdout.write(`server-event-token-back ${back}\n`);
});

scenario('nothing left over: every client\'s inbox is empty after a last fence', async () => {
  await settle(c.a1, new Map());
});

// ------------------------------------------------------------------ runner

class Skip extends Error {}
function skip(why) { throw new Skip(why); }

async function run() {
  let passed = 0;
  let failed = 0;
  try {
    await withTimeout(setUp(), 'the clients to connect and join', () => {}, 3 * REQUEST_MS);
  } catch (err) {
    process.stdout.write(`FAIL set-up: ${err.message}\n`);
    failed++;
  }
  if (!failed) {
    for (const { name, fn } of scenarios) {
      try {
        await withTimeout(fn(), 'the scenario (overall)', () => {}, 4 * REQUEST_MS);
        passed++;
        process.stdout.write(`PASS ${name}\n`);
      } catch (err) {
        if (err instanceof Skip) {
          process.stdout.write(`SKIP ${name}: ${err.message}\n`);
          continue;
        }
        failed++;
        process.stdout.write(`FAIL ${name}: ${String(err?.message ?? err).replace(/\s+/g, ' ')}\n`);
        for (const cl of allClients) cl.queue.length = 0;   // the next scenario starts clean
      }
    }
  }
  for (const cl of allClients) cl.close();
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed === 0 ? 0 : 1);
}

run();
