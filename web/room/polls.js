// @ts-check
// A room's polls: start one (typed options or the map's pins; single, multiple or ranked
// choice; anonymous or public; results always, after voting or after closing; an optional
// closing time), vote (ranked: put the options in order), and watch the count move live
// (`poll.update`). A closed poll shows its winner; one made from pins highlights it on the map.

import { api, el, errMsg, fmtDateTime } from "../dom.js";
import { t } from "../i18n.js";

/** @typedef {import("../room-socket.js").RoomSocket} RoomSocket */
/** @typedef {import("../types.js").Poll} Poll */
/** @typedef {import("../types.js").Permissions} Permissions */
/** @typedef {import("../types.js").User} User */

/**
 * @param {RoomSocket} socket
 * @param {{ slug: string, perms: Permissions, signal: AbortSignal,
 *   onWinner: (pinId: string | null) => void }} opts
 */
export function pollsPanel(socket, { slug, perms, signal, onWinner }) {
  const path = `/rooms/${encodeURIComponent(slug)}`;
  const list = el("div", { class: "polls", id: "poll-list" });
  const error = el("p", { class: "error", role: "alert" });
  /** @type {Map<string, Poll>} */
  const polls = new Map();
  /** @type {User | null} */
  let you = null;
  /** Ranked ballots being ordered, by poll id. @type {Map<string, number[]>} */
  const orders = new Map();

  // The form that starts a poll.
  const question = el("input", { id: "poll-question", maxlength: 200, required: true, placeholder: t("poll.questionPlaceholder"), "aria-label": t("poll.question") });
  const options = el("textarea", { id: "poll-options", rows: 3, placeholder: t("poll.optionsPlaceholder"), "aria-label": t("poll.options") });
  const fromPins = el("input", { id: "poll-from-pins", type: "checkbox" });
  const mode = el("select", { id: "poll-mode", "aria-label": t("poll.mode") },
    ...["single", "multiple", "ranked"].map((m) => el("option", { value: m, text: t(/** @type {any} */ (`poll.mode.${m}`)) })));
  const shown = el("select", { id: "poll-results", "aria-label": t("poll.resultsShown") },
    ...["always", "on_vote", "on_close"].map((m) => el("option", { value: m, text: t(/** @type {any} */ (`poll.shown.${m}`)) })));
  const anonymous = el("input", { id: "poll-anonymous", type: "checkbox" });
  const minutes = el("input", { id: "poll-minutes", type: "number", min: 1, max: 43200, placeholder: t("poll.noClose"), "aria-label": t("poll.closesIn") });
  fromPins.addEventListener("change", () => { options.disabled = fromPins.checked; });
  const form = el("form", { class: "form poll-form", id: "poll-form", hidden: true },
    el("label", {}, t("poll.question"), question),
    el("label", {}, t("poll.options"), options),
    el("label", { class: "check" }, fromPins, t("poll.fromPins")),
    el("div", { class: "row" },
      el("label", {}, t("poll.mode"), mode),
      el("label", {}, t("poll.resultsShown"), shown),
      el("label", {}, t("poll.closesIn"), minutes)),
    el("label", { class: "check" }, anonymous, t("poll.anonymous")),
    el("button", { type: "submit", text: t("poll.start") }));
  const toggle = el("button", { type: "button", id: "poll-new", text: t("poll.new"), onclick: () => { form.hidden = !form.hidden; if (!form.hidden) question.focus(); } });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    /** @type {Record<string, unknown>} */
    const body = { question: question.value, mode: mode.value, results: shown.value, anonymous: anonymous.checked };
    if (fromPins.checked) body.from_pins = true;
    else body.options = options.value.split("\n").map((s) => s.trim()).filter(Boolean);
    const m = Number(minutes.value);
    if (m > 0) body.closes_at = new Date(Date.now() + m * 60000).toISOString();
    try {
      /** @type {{ poll: Poll }} */
      const { poll } = await api("POST", `${path}/polls`, body, { signal });
      put(poll);
      form.reset();
      options.disabled = false;
      form.hidden = true;
    } catch (e) {
      if (!signal.aborted) error.textContent = errMsg(e);
    }
  });

  /** @param {Poll} p */
  const vote = async (p, /** @type {number[]} */ choices) => {
    error.textContent = "";
    try {
      /** @type {{ poll: Poll }} */
      const { poll } = await api("PUT", `/polls/${encodeURIComponent(p.id)}/vote`, { choices }, { signal });
      put(poll);
    } catch (e) {
      if (!signal.aborted) error.textContent = errMsg(e);
    }
  };

  /** @param {Poll} p */
  const close = async (p) => {
    try {
      const { poll } = await api("POST", `/polls/${encodeURIComponent(p.id)}/close`, {}, { signal });
      put(poll);
    } catch (e) {
      if (!signal.aborted) error.textContent = errMsg(e);
    }
  };

  /** The count shown for option `i`: ranked polls show their last round. @param {Poll} p @param {number} i */
  const countOf = (p, i) => {
    const r = p.results;
    if (!r) return null;
    if (r.rounds && r.rounds.length) {
      const last = r.rounds[r.rounds.length - 1];
      return last[i];
    }
    return r.counts[i];
  };

  /** @param {Poll} p */
  const card = (p) => {
    const mine = p.my_choices || [];
    const r = p.results;
    const total = r ? Math.max(1, ...r.counts, ...(r.rounds ? r.rounds.flat().map((x) => x || 0) : [])) : 1;
    const canClose = !p.closed && you && (p.created_by.id === you.id || perms.moderate);
    const head = el("div", { class: "poll-head" },
      el("strong", { class: "poll-question", text: p.question }),
      el("span", { class: "badge off", text: t(/** @type {any} */ (`poll.mode.${p.mode}`)) }),
      p.anonymous ? el("span", { class: "badge off", text: t("poll.anonymousBadge") }) : null,
      p.closed ? el("span", { class: "badge closed", text: t("poll.closed") })
        : p.closes_at ? el("span", { class: "muted", text: t("poll.closesAt", { time: fmtDateTime(p.closes_at) }) }) : null);
    const body = el("ol", { class: "poll-options" });
    /** @type {number[]} */
    let order = orders.get(p.id) || (p.mode === "ranked" && mine.length ? [...mine] : []);
    const voters = (/** @type {number} */ i) => (r && r.ballots ? r.ballots.filter((b) => b.choices[0] === i || (p.mode === "multiple" && b.choices.includes(i))).map((b) => b.user.username) : []);
    p.options.forEach((text, i) => {
      const n = countOf(p, i);
      const bar = el("span", { class: "bar" });
      if (n != null) bar.style.width = `${Math.round((n / total) * 100)}%`;
      const isWinner = r && r.winner === i && p.closed;
      /** @type {HTMLElement | null} */
      let input = null;
      if (!p.closed && you) {
        if (p.mode === "single") input = el("input", { type: "radio", name: `poll-${p.id}`, value: i, checked: mine.includes(i), "aria-label": text });
        else if (p.mode === "multiple") input = el("input", { type: "checkbox", value: i, checked: mine.includes(i), "aria-label": text });
        else {
          const rank = order.indexOf(i);
          input = el("button", { type: "button", class: rank >= 0 ? "rank on" : "rank", "data-rank-option": i,
            "aria-label": t("poll.rankThis", { option: text }),
            text: rank >= 0 ? String(rank + 1) : "·",
            onclick: () => {
              order = order.includes(i) ? order.filter((x) => x !== i) : [...order, i];
              orders.set(p.id, order);
              redraw(p.id);
            } });
        }
      }
      const names = p.anonymous ? [] : voters(i);
      body.append(el("li", { class: isWinner ? "poll-option winner" : "poll-option", "data-option": i },
        input || el("span", { class: "no-input" }), el("span", { class: "option-text", text: text }),
        n != null ? el("span", { class: "count", "data-count": n, text: String(n) }) : el("span", {}),
        el("span", { class: "track" }, bar),
        names.length ? el("span", { class: "muted voters", text: names.join(", ") }) : null));
    });
    const foot = el("div", { class: "poll-foot" });
    if (r) {
      foot.append(el("span", { class: "muted", "data-voters": r.voters, text: t("poll.voters", { n: r.voters }) }));
      if (r.rounds && r.rounds.length > 1) foot.append(el("span", { class: "muted", text: t("poll.rounds", { n: r.rounds.length }) }));
      if (p.closed) foot.append(el("strong", { class: "poll-winner", text: r.winner != null ? t("poll.winner", { option: p.options[r.winner] }) : t("poll.tie") }));
    } else {
      foot.append(el("span", { class: "muted", text: p.results_shown === "on_close" ? t("poll.hiddenUntilClose") : t("poll.hiddenUntilVote") }));
    }
    if (!p.closed && you) {
      foot.append(el("button", { type: "button", "data-vote": p.id, text: mine.length ? t("poll.change") : t("poll.vote"), onclick: () => {
        if (p.mode === "ranked") { if (order.length) void vote(p, order); return; }
        const picked = [...body.querySelectorAll("input")].filter((x) => /** @type {HTMLInputElement} */ (x).checked).map((x) => Number(/** @type {HTMLInputElement} */ (x).value));
        if (picked.length) void vote(p, picked);
      } }));
    }
    if (canClose) foot.append(el("button", { type: "button", class: "ghost", "data-close": p.id, text: t("poll.close"), onclick: () => void close(p) }));
    if (mine.length && !p.closed) foot.append(el("span", { class: "muted", text: t("poll.youVoted") }));
    return el("article", { class: p.closed ? "poll closed" : "poll", "data-poll": p.id }, head, body, foot);
  };

  /** @param {string} id */
  const redraw = (id) => {
    const p = polls.get(id);
    const old = list.querySelector(`[data-poll="${CSS.escape(id)}"]`);
    if (!p) return;
    const fresh = card(p);
    if (old) old.replaceWith(fresh); else list.prepend(fresh);
  };

  /** @param {Poll} p */
  const put = (p) => {
    const before = polls.get(p.id);
    // A broadcast does not carry this member's ballot; keep what we know.
    if (p.my_choices == null && before && before.my_choices) p = { ...p, my_choices: before.my_choices };
    polls.set(p.id, p);
    redraw(p.id);
    if (p.closed && p.results && (!before || !before.closed || !before.results)) {
      const w = p.results.winner;
      onWinner(w != null ? p.pins[w] : null);
    }
    empty.hidden = polls.size > 0;
  };

  const empty = el("p", { class: "muted", id: "poll-empty", text: t("poll.none") });
  socket.on("welcome", (f) => {
    you = f.you;
    toggle.hidden = !you;
    polls.clear();
    list.replaceChildren();
    // Oldest first, so the newest ends on top.
    for (const p of [...(f.polls || [])].reverse()) put(p);
    empty.hidden = polls.size > 0;
  });
  socket.on("poll.update", (f) => put(f.poll));

  return el("section", { class: "card polls-panel", id: "polls" },
    el("div", { class: "polls-head" }, el("h2", { text: t("poll.title") }), toggle),
    form, error, empty, list);
}
