// emitter_driver.mjs REDIS_URL
//
// @socket.io/redis-emitter 5.1.0 (on node-redis 4) driven line by line, for
// tests/cluster_emitter_test.cpp: each line on stdin is one call, as JSON:
//   {"op":"emit","nsp":"/chat","to":["r1"],"except":["r2"],"event":"ev","args":[...]}
//   {"op":"socketsJoin"|"socketsLeave","nsp":...,"to":[...],"except":[...],"rooms":[...]}
//   {"op":"disconnectSockets","nsp":...,"to":[...],"except":[...],"close":bool}
//   {"op":"serverSideEmit","nsp":...,"event":"ev","args":[...]}
//   {"op":"flush"}   prints {"flushed":N} once Redis has answered every call so far (N calls)
// nsp, to and except may be left out; {"$bin":"<hex>"} in args stands for a Buffer. Exits 0 at
// the end of stdin, 1 on a call that throws (after saying why on stderr).
import process from 'node:process';
import readline from 'node:readline';
import { Emitter } from '@socket.io/redis-emitter';
import { createClient } from 'redis';

const client = createClient({ url: process.argv[2] });
client.on('error', (e) => process.stderr.write(`emitter_driver: ${e}\n`));
await client.connect();
const root = new Emitter(client);

const revive = (v) => {
  if (Array.isArray(v)) return v.map(revive);
  if (v === null || typeof v !== 'object') return v;
  if (typeof v.$bin === 'string') return Buffer.from(v.$bin, 'hex');
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, revive(x)]));
};

let calls = 0;
for await (const line of readline.createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const c = JSON.parse(line);
  if (c.op === 'flush') {
    // One connection's commands are answered in order: the PING's answer comes after the rest.
    await client.ping();
    process.stdout.write(JSON.stringify({ flushed: calls }) + '\n');
    continue;
  }
  const ns = root.of(c.nsp ?? '/');
  let target = ns;
  for (const r of c.to ?? []) target = target.to(r);
  for (const r of c.except ?? []) target = target.except(r);
  try {
    switch (c.op) {
      case 'emit': target.emit(c.event, ...revive(c.args ?? [])); break;
      case 'socketsJoin': target.socketsJoin(c.rooms); break;
      case 'socketsLeave': target.socketsLeave(c.rooms); break;
      case 'disconnectSockets': target.disconnectSockets(c.close ?? false); break;
      case 'serverSideEmit': ns.serverSideEmit(c.event, ...revive(c.args ?? [])); break;
      default: throw new Error(`unknown op ${c.op}`);
    }
  } catch (e) {
    process.stderr.write(`emitter_driver: ${line}: ${e}\n`);
    process.exit(1);
  }
  ++calls;
}
await client.quit();
