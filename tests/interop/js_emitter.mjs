// js_emitter.mjs REDIS_URL
//
// @socket.io/redis-emitter 5.1.0 itself (on node-redis 4) making the calls that
// tests/redis_emitter_test.cpp makes with gw::redis::emitter (keep the two lists alike), so that
// the test can compare what each PUBLISHes, byte for byte. Prints {"published":N} once Redis has
// answered every PUBLISH, then exits 0.
import process from 'node:process';
import { Emitter } from '@socket.io/redis-emitter';
import { createClient } from 'redis';

const client = createClient({ url: process.argv[2] });
client.on('error', (e) => process.stderr.write(`js_emitter: ${e}\n`));
await client.connect();
const io = new Emitter(client);

io.emit('all', 1, 'two', { three: 3 }, -40000, 2.5);
io.to('r1').emit('one-room', true);
io.to('r1').to('r2').except('r3').emit('rooms', null);
io.to(['r1', 'r2', 'r1']).emit('set', 'x');
io.of('chat').volatile.compress(false).emit('flags', 1.5);
io.compress(true).volatile.emit('flags-other-order');
io.of('/chat').to('r1').emit('bin', Buffer.from([0, 1, 255]), { nested: Buffer.from([7]) });
io.in('r1').socketsJoin('r9');
io.except('r1').socketsLeave(['r2', 'r3']);
io.to('r1').disconnectSockets(true);
io.of('/x').disconnectSockets();
io.serverSideEmit('hello', 1, 'x', { k: [true] });
const published = 12;

// node-redis sends one connection's commands in order: the PING's answer comes after every PUBLISH's.
await client.ping();
process.stdout.write(JSON.stringify({ published }) + '\n');
await client.quit();
