// @ts-check
// Resumable uploads to /api/v1/uploads (tus 1.0.0) with tus-js-client, vendored and loaded on
// first use. tus-js-client remembers each file's upload address in localStorage under a
// fingerprint of its name, type, size and modification time, so a file picked again after an
// interruption (a closed laptop, a lost connection, a closed tab) continues where its last piece
// landed instead of starting over.

import { errMsg, loadScript } from "./dom.js";
import { errorText, t } from "./i18n.js";

/**
 * The part of tus-js-client moim uses.
 * @typedef {{ getStatus(): number, getBody(): string, getHeader(name: string): string | undefined }} TusResponse
 * @typedef {{ creationTime: string }} TusPrevious
 * @typedef {object} TusUpload
 * @property {() => Promise<TusPrevious[]>} findPreviousUploads
 * @property {(previous: TusPrevious) => void} resumeFromPreviousUpload
 * @property {() => void} start
 * @property {(terminate?: boolean) => Promise<void>} abort
 * @typedef {{ Upload: new (file: File, options: Record<string, unknown>) => TusUpload, isSupported: boolean }} Tus
 */

/**
 * What an upload reports.
 * @typedef {object} Handlers
 * @property {(sent: number, total: number) => void} onProgress
 * @property {(videoId: string | null) => void} onSuccess videoId: the video it became
 * @property {(message: string, retryable: boolean) => void} onError after the retries ran out;
 *   retryable: the cause may pass (a lost connection, a busy server), unlike a refusal
 */

/** What the page can do with a running upload. @typedef {{ cancel(): Promise<void>, stop(): void, retry(): void }} Job */

/** Big enough to keep a fast link busy, small enough that a cut costs little. */
const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Reports a failed upload: the API's own message when it sent one, and whether trying again
 * could help (not after a refusal such as a full plan or a file too large).
 * @param {unknown} e
 * @param {Handlers["onError"]} report
 */
function fail(e, report) {
  const res = e && typeof e === "object" && "originalResponse" in e
    ? /** @type {TusResponse | null} */ (e.originalResponse) : null;
  if (!res) { report(t("upload.network"), true); return; }
  const status = res.getStatus();
  const retryable = status >= 500 || status === 409 || status === 423 || status === 429;
  try {
    const body = JSON.parse(res.getBody());
    if (typeof body.error === "string") { report(errorText(body.error, body.message), retryable); return; }
  } catch { /* not JSON */ }
  report(t("error.http", { status }), retryable);
}

/**
 * Uploads `file`, resuming an earlier upload of the same file when there is one.
 * @param {File} file
 * @param {Handlers} h
 * @returns {Job}
 */
export function startUpload(file, h) {
  /** @type {TusUpload | null} */
  let upload = null;
  let stopped = false;
  let videoId = /** @type {string | null} */ (null);
  void (async () => {
    const w = /** @type {Window & { tus?: Tus }} */ (window);
    const tus = await loadScript("/assets/vendor/tus.min.js", () => w.tus);
    if (stopped) return;
    if (!tus || !tus.isSupported) { h.onError(t("upload.unsupported"), false); return; }
    const up = new tus.Upload(file, {
      // Absolute, so the fingerprint and the stored upload address do not depend on the page.
      endpoint: new URL("/api/v1/uploads", location.href).href,
      chunkSize: CHUNK_BYTES,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      metadata: { filename: file.name, title: file.name.replace(/\.[^.]+$/, "") || file.name },
      removeFingerprintOnSuccess: true,
      // The last PATCH (or, when it had all arrived before, the HEAD of a resume) names the video.
      onAfterResponse: (/** @type {unknown} */ _req, /** @type {TusResponse} */ res) => {
        const id = res.getHeader("Moim-Video-Id");
        if (id) videoId = id;
      },
      onProgress: h.onProgress,
      onSuccess: () => h.onSuccess(videoId),
      onError: (/** @type {unknown} */ e) => fail(e, h.onError),
    });
    upload = up;
    const previous = await up.findPreviousUploads();
    if (stopped) return;
    previous.sort((a, b) => b.creationTime.localeCompare(a.creationTime));
    if (previous.length) up.resumeFromPreviousUpload(previous[0]);
    up.start();
  })().catch((e) => { if (!stopped) h.onError(errMsg(e), true); });
  return {
    // Gone for good: the server forgets it and so does the fingerprint store.
    cancel: async () => { stopped = true; if (upload) await upload.abort(true); },
    // Paused: picking the file again resumes it.
    stop: () => { stopped = true; if (upload) void upload.abort(false); },
    retry: () => { if (upload && !stopped) upload.start(); },
  };
}
