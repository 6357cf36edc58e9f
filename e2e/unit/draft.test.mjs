// Unit tests of web/community/draft.js's event reader (node --test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { takeEvents } from "../../web/community/draft.js";

test("complete events are taken, a partial one waits", () => {
  const a = takeEvents('data: {"delta":"Hel"}\n\ndata: {"delta":"lo"}\n\ndata: {"del');
  assert.deepEqual(a.events, [{ delta: "Hel" }, { delta: "lo" }]);
  assert.equal(a.rest, 'data: {"del');
  const b = takeEvents(a.rest + 'ta":"!"}\n\ndata: {"done":true}\n\n');
  assert.deepEqual(b.events, [{ delta: "!" }, { done: true }]);
  assert.equal(b.rest, "");
});

test("CRLF, comments, other fields and junk are tolerated", () => {
  const r = takeEvents(': ping\r\n\r\nevent: x\r\ndata:{"delta":"a"}\r\n\r\ndata: not json\n\n\n\n');
  assert.deepEqual(r.events, [{ delta: "a" }]);
  assert.equal(r.rest, "");
});
