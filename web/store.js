// @ts-check
// The UI's shared state: who is signed in and the language. This is the only module-level
// mutable state; everything else belongs to a mounted page and goes away with it.

/** @typedef {import("./types.js").User} User */
/** @typedef {"en" | "ko"} Lang */
/** @typedef {{ user: User | null, lang: Lang }} State */
/** @typedef {(state: State, prev: State) => void} Subscriber */

/** @type {State} */
let state = { user: null, lang: "en" };
/** @type {Set<Subscriber>} */
const subscribers = new Set();

/** The current state (treat it as read-only; change it with `set`). */
export function get() {
  return state;
}

/**
 * Replaces some fields and tells every subscriber.
 * @param {Partial<State>} patch
 */
export function set(patch) {
  const prev = state;
  state = { ...state, ...patch };
  for (const fn of [...subscribers]) fn(state, prev);
}

/**
 * @param {Subscriber} fn
 * @returns {() => void} unsubscribes
 */
export function subscribe(fn) {
  subscribers.add(fn);
  return () => { subscribers.delete(fn); };
}
