// Peer server for moim's fan-out benchmark: a plain socket.io 4 chat relay.
//
//   node socketio.mjs [PORT]        (or PORT=… in the environment; 0 picks a free port)
//
// A client joins a room by emitting `join` with the room name (an optional ack callback is
// called once it has joined); a `msg` event with a string payload is broadcast to the whole
// room, sender included. Prints `listening <port>` when ready.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] ?? process.env.PORT ?? 3000);
const http = createServer();
const io = new Server(http, {
  // The benchmark client speaks the WebSocket transport directly; defaults otherwise.
  serveClient: false,
});

io.on("connection", (socket) => {
  let room = null;
  socket.on("join", (name, ack) => {
    if (typeof name === "string" && name.length > 0) {
      room = name;
      socket.join(name);
    }
    if (typeof ack === "function") ack();
  });
  socket.on("msg", (payload) => {
    if (room !== null && typeof payload === "string") io.to(room).emit("msg", payload);
  });
});

http.listen(port, "127.0.0.1", () => {
  console.log(`listening ${http.address().port}`);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => process.exit(0));
}
