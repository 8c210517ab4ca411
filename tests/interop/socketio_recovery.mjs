// socketio_recovery.mjs PORT TRANSPORT: socket.io-client's own connection-state recovery against
// recovery_server (ours). A client in a room, which got one event, loses its transport; while it is away another
// client shouts to the room; when it connects again it must say recovered, keep its id, get the
// shout it missed exactly once, and still be in the room. TRANSPORT: websocket or polling.
// Prints one line per check; exits 0 when all pass, 1 otherwise.
import process from 'node:process';
import { io } from 'socket.io-client';

const [port, transport = 'websocket'] = process.argv.slice(2);
if (!/^\d+$/.test(port ?? '') || !['websocket', 'polling'].includes(transport)) {
  console.error('usage: node socketio_recovery.mjs PORT websocket|polling');
  process.exit(2);
}
const url = `http://127.0.0.1:${port}`;
const TIMEOUT_MS = 10000;
let failed = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failed += 1;
};
const within = (p, what) => Promise.race([
  p, new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), TIMEOUT_MS).unref()),
]);
const once = (emitter, event, what) => within(new Promise((resolve) => emitter.once(event, (...a) => resolve(a))), what);

const opts = { transports: [transport], forceNew: true, reconnection: false };
const away = io(url, opts);
const shouter = io(url, opts);
const heard = [];
away.on('heard', (text) => heard.push(text));
try {
  // Both listen from the start: either may connect first.
  await Promise.all([once(away, 'connect', 'the first connection'), once(shouter, 'connect', "the shouter's connection")]);
  check(away.recovered === false, 'a first connection is not recovered');
  const id = away.id;
  check(await within(away.emitWithAck('join', 'r'), 'join') === true, 'joined room r');
  // A client recovers from the offset of the last event it got (as with Node's server, one that
  // got none has nothing to recover from).
  const first = once(away, 'heard', 'the first shout');
  check(await within(shouter.emitWithAck('shout', { room: 'r', text: 'before' }), 'first shout') === true, 'shouted once');
  await first;

  // The transport goes (not a disconnect of the socket: the server keeps its state).
  const gone = once(away, 'disconnect', 'the disconnect');
  away.io.engine.close();
  const [reason] = await gone;
  check(reason === 'transport close' || reason === 'forced close', `disconnected by the transport (${reason})`);

  check(await within(shouter.emitWithAck('shout', { room: 'r', text: 'missed' }), 'shout') === true, 'shouted while away');

  const back = once(away, 'connect', 'the connection again');
  away.connect();
  await back;
  check(away.recovered === true, 'the connection again is recovered');
  check(away.id === id, `the same id (${id}, now ${away.id})`);
  // The missed event comes before the CONNECT reply, so it is delivered by now; a shout after it
  // proves the room came back too, and orders the check.
  check(await within(shouter.emitWithAck('shout', { room: 'r', text: 'live' }), 'second shout') === true, 'shouted again');
  await within((async () => { while (heard.length < 3) await once(away, 'heard', 'the live shout'); })(), 'the shouts');
  check(JSON.stringify(heard) === JSON.stringify(['before', 'missed', 'live']),
    `heard the missed shout once, then the live one: ${JSON.stringify(heard)}`);
} catch (err) {
  check(false, err.message);
} finally {
  away.disconnect();
  shouter.disconnect();
}
process.exit(failed ? 1 : 0);
