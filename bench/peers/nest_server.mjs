// A NestJS gateway, a peer for gateway.hpp's benchmark: the framework gateway.hpp's hooks and
// handlers are modelled on (bench/PROTOCOL.md). Two modes, one per platform:
//   events    @nestjs/platform-ws (WsAdapter): ws://127.0.0.1:PORT/, the {event, data} envelope
//   socketio  @nestjs/platform-socket.io (IoAdapter): Socket.IO 4 at /socket.io/, websocket
//             transport only, namespace "/"
// Usage (from the repository root, so node_modules resolves):
//   node bench/peers/nest_server.mjs PORT [events|socketio] [deflate]   (PORT 0 picks a free port)
// deflate: permessage-deflate on, threshold 1024 (ws's and Socket.IO's defaults otherwise).
// Either way the gateway shares the application's own HTTP server. Prints "listening on port N"
// once listening; exits 0 on SIGINT/SIGTERM.
//
// Plain JavaScript, since no TypeScript compiler is available here: each decorator is applied by
// calling it the way TypeScript's emitted code would.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ack, ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway, WebSocketServer } from '@nestjs/websockets';

const port = Number.parseInt(process.argv[2] ?? '0', 10);
const mode = process.argv[3] ?? 'events';
const deflate = process.argv[4] === 'deflate';
if (!Number.isInteger(port) || port < 0 || port > 65535 || process.argv.length > 5 || !['events', 'socketio'].includes(mode) ||
    (process.argv.length === 5 && !deflate)) {
  console.error('usage: node nest_server.mjs PORT [events|socketio] [deflate]');
  process.exit(2);
}
const perMessageDeflate = deflate ? { threshold: 1024 } : false;

class WsBenchGateway {
  // WsAdapter has no rooms, so the gateway keeps them: room name -> member sockets, and per
  // socket the rooms it is in so that a disconnect only visits those.
  rooms = new Map();
  joined = new WeakMap();

  // WsAdapter sends JSON.stringify(whatever the handler returns), not an envelope it builds
  // itself: returning the data alone would put the bare data on the wire. The WsResponse shape
  // {event, data} is how a Nest gateway on this adapter names the reply's event.
  echo(data) {
    return { event: 'echo', data };
  }

  join(client, room) {
    // Anything but a string is ignored (PROTOCOL.md allows it); returning nothing sends nothing.
    if (typeof room !== 'string') return undefined;
    let members = this.rooms.get(room);
    if (members === undefined) {
      members = new Set();
      this.rooms.set(room, members);
    }
    members.add(client);
    let mine = this.joined.get(client);
    if (mine === undefined) {
      mine = new Set();
      this.joined.set(client, mine);
    }
    mine.add(room);
    return { event: 'join', data: room };
  }

  broadcast(data) {
    const members = this.rooms.get('bench');
    if (members === undefined) return;
    // Encoded once for all members; binary:false because ws sends a Buffer as a binary frame
    // unless told otherwise.
    const bytes = Buffer.from(JSON.stringify({ event: 'broadcast', data }), 'utf8');
    for (const member of members) member.send(bytes, { binary: false });
    // Returning nothing: the sender gets no reply of its own.
  }

  handleDisconnect(client) {
    const mine = this.joined.get(client);
    if (mine === undefined) return;
    for (const room of mine) {
      const members = this.rooms.get(room);
      if (members === undefined) continue;
      members.delete(client);
      if (members.size === 0) this.rooms.delete(room);
    }
    this.joined.delete(client);
  }
}

// On Socket.IO the adapter keeps the rooms, and the server the gateway is given broadcasts.
class IoBenchGateway {
  // Set by Nest once the gateway's Socket.IO server exists (@WebSocketServer()).
  server;

  // IoAdapter acknowledges with a handler's return value when the client asked (an ack id) and
  // sends nothing otherwise; {event, data} is emitted instead. PROTOCOL.md wants both, so the
  // ack is taken by hand (@Ack(): Nest then leaves it alone) and the echo emitted without one.
  echo(data, ack) {
    if (typeof ack === 'function') {
      ack(data);
      return undefined;
    }
    return { event: 'echo', data };
  }

  join(client, room) {
    if (typeof room !== 'string') return undefined;
    client.join(room);
    return { event: 'join', data: room };
  }

  broadcast(data) {
    // Socket.IO encodes a room broadcast once and hands the same packet to every member.
    this.server.to('bench').emit('broadcast', data);
  }
}

// What `@SubscribeMessage('x') m(@ConnectedSocket() c, @MessageBody() d)` compiles to.
function subscribe(cls, event, method, params) {
  const proto = cls.prototype;
  params.forEach((decorate, index) => decorate(proto, method, index));
  SubscribeMessage(event)(proto, method, Object.getOwnPropertyDescriptor(proto, method));
}
subscribe(WsBenchGateway, 'echo', 'echo', [MessageBody()]);
subscribe(WsBenchGateway, 'join', 'join', [ConnectedSocket(), MessageBody()]);
subscribe(WsBenchGateway, 'broadcast', 'broadcast', [MessageBody()]);
// No port, so the gateway shares the application's HTTP server; no path, so WsAdapter serves "/"
// (it matches the request's pathname exactly and destroys upgrades to any other path).
// perMessageDeflate and maxPayload are passed through to ws, set as for the other peers.
WebSocketGateway({ perMessageDeflate, maxPayload: 64 * 1024 * 1024 })(WsBenchGateway);

subscribe(IoBenchGateway, 'echo', 'echo', [MessageBody(), Ack()]);
subscribe(IoBenchGateway, 'join', 'join', [ConnectedSocket(), MessageBody()]);
subscribe(IoBenchGateway, 'broadcast', 'broadcast', [MessageBody()]);
WebSocketServer()(IoBenchGateway.prototype, 'server');
// The options go to Socket.IO's Server, set as in peers/socketio_server.mjs: websocket transport
// only, compression only when asked, the other peers' 64 MiB message limit, no client script served.
WebSocketGateway({
  path: '/socket.io/',
  transports: ['websocket'],
  perMessageDeflate,
  maxHttpBufferSize: 64 * 1024 * 1024,
  serveClient: false,
})(IoBenchGateway);

const BenchGateway = mode === 'events' ? WsBenchGateway : IoBenchGateway;
class AppModule {}
Module({ providers: [BenchGateway] })(AppModule);

// abortOnError false: a failed bootstrap throws here instead of calling process.abort().
const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
if (mode === 'events') {
  const { WsAdapter } = await import('@nestjs/platform-ws');
  app.useWebSocketAdapter(new WsAdapter(app));
} else {
  const { IoAdapter } = await import('@nestjs/platform-socket.io');
  app.useWebSocketAdapter(new IoAdapter(app));
}

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  // app.close() terminates the gateway's clients and then closes the HTTP server; the deadline
  // covers a connection that does not go away.
  setTimeout(() => process.exit(0), 1000).unref();
  try {
    await app.close();
  } finally {
    process.exit(0);
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, stop);

try {
  await app.listen(port, '127.0.0.1');
} catch (err) {
  console.error(`server error: ${err.message}`);
  process.exit(1);
}
process.stdout.write(`listening on port ${app.getHttpServer().address().port}\n`);
