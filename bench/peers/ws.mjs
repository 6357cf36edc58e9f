// Peer server for moim's fan-out benchmark: a plain `ws` chat relay.
//
//   node ws.mjs [PORT]              (or PORT=… in the environment; 0 picks a free port)
//
// Clients connect to `/?room=NAME`; every text message a client sends is sent as-is to every
// client in that room, sender included. Prints `listening <port>` when ready.
import { createServer } from "node:http";
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] ?? process.env.PORT ?? 3001);
const http = createServer();
const wss = new WebSocketServer({ server: http });
/** @type {Map<string, Set<import("ws").WebSocket>>} */
const rooms = new Map();

wss.on("connection", (socket, req) => {
  const name = new URL(req.url ?? "/", "http://localhost").searchParams.get("room") ?? "";
  let members = rooms.get(name);
  if (members === undefined) {
    members = new Set();
    rooms.set(name, members);
  }
  members.add(socket);
  socket.on("message", (data, isBinary) => {
    if (isBinary) return;
    for (const peer of members) {
      if (peer.readyState === 1) peer.send(data, { binary: false });
    }
  });
  socket.on("close", () => {
    members.delete(socket);
    if (members.size === 0 && rooms.get(name) === members) rooms.delete(name);
  });
  socket.on("error", () => {});
});

http.listen(port, "127.0.0.1", () => {
  console.log(`listening ${http.address().port}`);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => process.exit(0));
}
