// @ts-check
// AI review drafts: POST /api/v1/ai/review-draft answers with server-sent events, read here
// as they arrive (fetch's body stream: EventSource cannot POST). `takeEvents` is the pure part,
// unit-tested under `node --test`: it cuts complete events off a buffer of text.

import { ApiError } from "../dom.js";
import { errorText, t } from "../i18n.js";

/**
 * The complete events at the front of `buffer` (their `data:` JSON, parsed) and what is left.
 * @param {string} buffer
 * @returns {{ events: any[], rest: string }}
 */
export function takeEvents(buffer) {
  const events = [];
  let rest = buffer.replace(/\r\n/g, "\n");
  let end;
  while ((end = rest.indexOf("\n\n")) >= 0) {
    const block = rest.slice(0, end);
    rest = rest.slice(end + 2);
    const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
    if (!data) continue;
    try { events.push(JSON.parse(data)); } catch { /* not JSON: skipped */ }
  }
  return { events, rest };
}

/**
 * Streams a draft: `onDelta` gets each piece of text. Resolves when it is done; rejects with
 * an ApiError (refused, or failed midway).
 * @param {Record<string, unknown>} request
 * @param {(text: string) => void} onDelta
 * @param {AbortSignal} signal
 */
export async function streamDraft(request, onDelta, signal) {
  let res;
  try {
    res = await fetch("/api/v1/ai/review-draft", {
      method: "POST", credentials: "same-origin", signal,
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify(request),
    });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new ApiError(t("error.network"), "network", 0);
  }
  if (!res.ok || !res.body) {
    let data = null;
    try { data = await res.json(); } catch { /* no body */ }
    const code = data && typeof data.error === "string" ? data.error : undefined;
    throw new ApiError(errorText(code, (data && data.message) || t("error.http", { status: res.status })), code, res.status);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    const { events, rest } = takeEvents(buffer + value);
    buffer = rest;
    for (const ev of events) {
      if (typeof ev.delta === "string") onDelta(ev.delta);
      else if (ev.done) return;
      else if (ev.error) throw new ApiError(errorText(ev.error, ev.message || ""), ev.error, 502);
    }
  }
  throw new ApiError(t("draft.cutShort"), "ai_failed", 502);
}
