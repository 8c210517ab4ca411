// cluster_recovery.mjs CLUSTER_SERVER
//
// Interop test: connection-state recovery across the nodes of a cluster in streams mode, through a
// load balancer. Starts its own redis-server, nodes and nginx on free loopback ports, and stops them.
//   CLUSTER_SERVER  tests/interop/cluster_server (our node; CLUSTER_MODE=streams is set for it).
// Node's peer is tests/interop/node_cluster_peer.mjs with @socket.io/redis-streams-adapter.
//
// Each round: nginx sends every connection to a primary node, and to a backup node once the
// primary is down. Client X (socket.io-client, WebSocket) connects through nginx (to the primary),
// joins room "r" with data {user} from its auth, and receives a message sent by client Y from the
// backup node (so it holds an offset). Then the primary goes: killed outright (SIGKILL), or first
// the client's transport drops (its node keeps the session in Redis, as the streams adapter does)
// and then the node is killed. Y sends two messages to "r"; X connects again through nginx, now to
// the backup, and must be recovered: same id, the two messages it missed, its data and its room.
//   1. ours -> ours, the node killed with its clients on it (found in its hash of live sessions);
//   2. Node -> ours, the transport dropped first (Node's session format, read by us);
//   3. ours -> Node, the transport dropped first (our session format, read by Node).
//
// Prints "PASS name" / "FAIL name: why", then "N passed, M failed"; exit status 0 iff nothing
// failed, 77 when redis-server or nginx is missing. Every wait is limited by CLUSTER_TIMEOUT_MS
// (default 8000).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { io } from 'socket.io-client';

const argv = process.argv.slice(2);
if (argv.length !== 1) {
  process.stderr.write('usage: node cluster_recovery.mjs CLUSTER_SERVER\n');
  process.exit(2);
}
const CPP = path.resolve(argv[0]);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const PEER = path.join(HERE, 'node_cluster_peer.mjs');
const TIMEOUT_MS = Number(process.env.CLUSTER_TIMEOUT_MS) || 8000;

const which = (name, extra = []) => {
  for (const dir of [...(process.env.PATH || '').split(':'), ...extra]) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return null;
};
const REDIS = which('redis-server');
const NGINX = process.env.NGINX || which('nginx', ['/usr/sbin']);
if (!REDIS || !NGINX) {
  process.stderr.write(`SKIP: ${REDIS ? 'nginx' : 'redis-server'} not found (Debian: apt-get install nginx-light redis-server)\n`);
  process.exit(77);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster_recovery-'));
const children = new Set();
process.on('unhandledRejection', () => {});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function withTimeout(promise, what, ms = TIMEOUT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Starts a process and resolves with it once a line of its output matches ready (its output is in NAME.log). */
function start(name, cmd, args, env, ready) {
  const log = fs.createWriteStream(path.join(tmp, `${name}.log`));
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let seen = '';
  const found = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      log.write(chunk);
      seen += chunk.toString();
      const m = seen.match(ready);
      if (m) resolve(m);
      if (seen.length > 65536) seen = seen.slice(-4096);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, signal) => reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${seen}`)));
  });
  return withTimeout(found, `${name} to start`).then((m) => ({ child, match: m, name }));
}

function stop(p, signal = 'SIGKILL') {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.child.once('exit', () => resolve());
    p.child.kill(signal);
  });
}

async function startRedis() {
  const port = await freePort();
  const p = await start('redis', REDIS, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', tmp],
    {}, /Ready to accept connections/);
  return { ...p, url: `redis://127.0.0.1:${port}` };
}

async function startNode(kind, name, redisUrl) {
  const env = { REDIS_URL: redisUrl, CLUSTER_MODE: 'streams' };
  const p = kind === 'cpp'
    ? await start(name, CPP, ['0'], env, /listening on port (\d+)/)
    : await start(name, process.execPath, [PEER, '0'], env, /listening on port (\d+)/);
  return { ...p, kind, port: Number(p.match[1]) };
}

/** nginx with upstream primary, and backup taking over when the primary refuses connections. */
async function startNginx(name, primary, backup) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(path.join(dir, 'temp'), { recursive: true });
  const port = await freePort();
  const user = process.getuid && process.getuid() === 0 ? `user ${os.userInfo().username} ${spawnSync('id', ['-gn']).stdout.toString().trim()};` : '';
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `${user}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/temp/client;
    proxy_temp_path ${dir}/temp/proxy;
    fastcgi_temp_path ${dir}/temp/fastcgi;
    uwsgi_temp_path ${dir}/temp/uwsgi;
    scgi_temp_path ${dir}/temp/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream nodes {
        server 127.0.0.1:${primary};
        server 127.0.0.1:${backup} backup;
    }
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://nodes;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 60s;
        }
    }
}
`);
  const p = await start(name, NGINX, ['-e', 'stderr', '-p', `${dir}/`, '-c', `${dir}/nginx.conf`, '-g', 'daemon off;'], {},
    /start worker process|\[emerg\]/);
  if (p.match[0].includes('emerg')) throw new Error(`nginx refused its configuration: see ${dir}`);
  return { ...p, port };
}

function connect(url, opts = {}) {
  const s = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, ...opts });
  s.heard = [];
  s.waiters = [];
  s.on('said', (m) => {
    s.heard.push(m.text);
    for (const w of s.waiters.splice(0)) w();
  });
  return s;
}
const connected = (s) => withTimeout(new Promise((resolve, reject) => {
  if (s.connected) return resolve();
  s.once('connect', resolve);
  s.once('connect_error', (e) => reject(new Error(`connect_error: ${e.message}`)));
}), 'the connection');
const ask = (s, ...args) => withTimeout(s.emitWithAck(...args), `an answer to ${args[0]}`);
/** Waits until s has heard text (a 'said' event), and returns what it heard up to it. */
function heard(s, text) {
  return withTimeout(new Promise((resolve) => {
    const check = () => {
      const i = s.heard.indexOf(text);
      if (i >= 0) return resolve(s.heard.splice(0, i + 1));
      s.waiters.push(check);
    };
    check();
  }), `'${text}'`);
}

let passed = 0;
let failed = 0;
let rounds = 0;
async function round(name, redis, redisClient, primaryKind, backupKind, graceful) {
  const procs = [];
  const sockets = [];
  const tag = `round${++rounds}`;   // its processes' logs and nginx's directory
  try {
    const primary = await startNode(primaryKind, `${tag}-primary-${primaryKind}`, redis.url);
    procs.push(primary);
    const backup = await startNode(backupKind, `${tag}-backup-${backupKind}`, redis.url);
    procs.push(backup);
    const nginx = await startNginx(`${tag}-nginx`, primary.port, backup.port);
    procs.push(nginx);

    const y = connect(`http://127.0.0.1:${backup.port}`);
    const x = connect(`http://127.0.0.1:${nginx.port}`, { auth: { user: 'ada' } });
    sockets.push(x, y);
    await Promise.all([connected(x), connected(y)]);
    const before = await ask(x, 'whoami');
    if (before.port !== primary.port) throw new Error(`X reached port ${before.port}, not the primary's ${primary.port}`);
    if (await ask(x, 'join', 'r') !== true) throw new Error('join refused');
    // Y's messages cross to X's node once both nodes read the cluster (Node's streams adapter starts
    // reading on its own time): probes until one arrives.
    let probe = 0;
    for (;;) {
      const text = `probe ${++probe}`;
      await ask(y, 'say', { room: 'r', text });
      try {
        await withTimeout(heard(x, text), text, 300);
        break;
      } catch (e) {
        if (probe * 300 > TIMEOUT_MS) throw new Error(`no message of the backup node reached the primary's client: ${e.message}`);
      }
    }
    const id = x.id;
    const gone = new Promise((resolve) => x.once('disconnect', resolve));
    if (graceful) {
      // The transport drops, the node lives: it keeps the session in Redis, then dies.
      const key = `sio:session:${x._pid}`;
      x.io.engine.close();
      await withTimeout(gone, 'the disconnection');
      await withTimeout((async () => {
        while (!await redisClient.exists(key)) await new Promise((r) => setTimeout(r, 20));
      })(), `${key} in Redis`);
      await stop(primary);
    } else {
      await stop(primary);   // with X on it
      await withTimeout(gone, 'the disconnection');
    }
    await ask(y, 'say', { room: 'r', text: 'missed 1' });
    await ask(y, 'say', { room: 'r', text: 'missed 2' });
    x.heard.length = 0;
    x.connect();
    await connected(x);
    const problems = [];
    if (!x.recovered) problems.push('not recovered');
    if (x.id !== id) problems.push(`id ${x.id}, was ${id}`);
    if (problems.length) throw new Error(`${problems.join('; ')} (heard ${JSON.stringify(x.heard)})`);
    const missed = await heard(x, 'missed 2');
    if (JSON.stringify(missed) !== JSON.stringify(['missed 1', 'missed 2'])) problems.push(`missed ${JSON.stringify(missed)}`);
    const after = await ask(x, 'whoami');
    if (after.port !== backup.port) problems.push(`now on port ${after.port}, not the backup's ${backup.port}`);
    if (after.data?.user !== 'ada') problems.push(`data ${JSON.stringify(after.data)}`);
    await ask(y, 'say', { room: 'r', text: 'after' });
    const later = await heard(x, 'after');
    if (JSON.stringify(later) !== JSON.stringify(['after'])) problems.push(`after recovery ${JSON.stringify(later)}`);
    if (problems.length) throw new Error(problems.join('; '));
    passed++;
    console.log(`PASS ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
    for (const p of procs) {
      const log = path.join(tmp, `${p.name}.log`);
      if (fs.existsSync(log)) console.log(`--- ${p.name}:\n${fs.readFileSync(log, 'utf8').slice(-3000)}`);
    }
  } finally {
    for (const s of sockets) s.close();
    for (const p of procs.reverse()) await stop(p, 'SIGTERM');
  }
}

let redis;
let client;
try {
  redis = await startRedis();
  client = createClient({ url: redis.url });
  client.on('error', () => {});
  await client.connect();
  await round('ours to ours, the node killed', redis, client, 'cpp', 'cpp', false);
  await round('Node to ours, the transport dropped first', redis, client, 'node', 'cpp', true);
  await round('ours to Node, the transport dropped first', redis, client, 'cpp', 'node', true);
} catch (e) {
  failed++;
  console.log(`FAIL setup: ${e.message}`);
} finally {
  await client?.quit().catch(() => {});
  await stop(redis, 'SIGTERM');
  for (const c of children) c.kill('SIGKILL');
  if (!failed) fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
