// A NestJS gateway on @nestjs/platform-ws (WsAdapter), a peer for gateway.hpp's benchmark: the
// framework gateway.hpp's hooks and handlers are modelled on (bench/PROTOCOL.md, "events").
// Usage (from the repository root, so node_modules resolves):
//   node bench/peers/nest_server.mjs PORT   (PORT 0 picks a free port)
// Serves ws://127.0.0.1:PORT/ on the application's own HTTP server. Prints "listening on port N"
// once listening; exits 0 on SIGINT/SIGTERM.
//
// Plain JavaScript, since no TypeScript compiler is available here: each decorator is applied by
// calling it the way TypeScript's emitted code would.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConnectedSocket, MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { WsAdapter } from '@nestjs/platform-ws';

const port = Number.parseInt(process.argv[2] ?? '0', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535 || process.argv.length > 3) {
  console.error('usage: node nest_server.mjs PORT');
  process.exit(2);
}

class BenchGateway {
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

// What `@SubscribeMessage('x') m(@ConnectedSocket() c, @MessageBody() d)` compiles to.
function subscribe(cls, event, method, params) {
  const proto = cls.prototype;
  params.forEach((decorate, index) => decorate(proto, method, index));
  SubscribeMessage(event)(proto, method, Object.getOwnPropertyDescriptor(proto, method));
}
subscribe(BenchGateway, 'echo', 'echo', [MessageBody()]);
subscribe(BenchGateway, 'join', 'join', [ConnectedSocket(), MessageBody()]);
subscribe(BenchGateway, 'broadcast', 'broadcast', [MessageBody()]);
// No port, so the gateway shares the application's HTTP server; no path, so WsAdapter serves "/"
// (it matches the request's pathname exactly and destroys upgrades to any other path).
// perMessageDeflate and maxPayload are passed through to ws, set as for the other peers.
WebSocketGateway({ perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 })(BenchGateway);

class AppModule {}
Module({ providers: [BenchGateway] })(AppModule);

// abortOnError false: a failed bootstrap throws here instead of calling process.abort().
const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
app.useWebSocketAdapter(new WsAdapter(app));

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
