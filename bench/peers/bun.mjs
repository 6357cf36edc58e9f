// Peer server for moim's fan-out benchmark: Bun's built-in WebSocket pub/sub (uWebSockets).
//
//   bun bun.mjs [PORT]              (or PORT=… in the environment; 0 picks a free port)
//
// Same client protocol as ws.mjs: clients connect to `/?room=NAME`; every text message a
// client sends is sent as-is to every client in that room, sender included. Each connection
// subscribes to its room's topic and a message is relayed with `server.publish`, which, unlike
// `ws.publish`, does not leave the sender out. Prints `listening <port>` when ready.

const port = Number(process.argv[2] ?? process.env.PORT ?? 3002);

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req, srv) {
    const room = new URL(req.url).searchParams.get("room") ?? "";
    if (srv.upgrade(req, { data: { room } })) return undefined;
    return new Response("WebSocket only\n", { status: 426 });
  },
  websocket: {
    // Like the `ws` peer: no idle timeout, no compression, no payload limit to speak of.
    idleTimeout: 0,
    perMessageDeflate: false,
    open(ws) {
      ws.subscribe(ws.data.room);
    },
    message(ws, msg) {
      if (typeof msg !== "string") return;
      server.publish(ws.data.room, msg);
    },
  },
});

console.log(`listening ${server.port}`);

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => process.exit(0));
}
