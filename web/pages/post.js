// @ts-check
// One post (`/c/p/:id`): its photos, text and details; likes, favourites and reports; for a
// place its rating and reviews; for a listing its status (the seller moves it on sale →
// reserved → sold) and "Contact the seller", which opens the private room with them; the
// comments, best first, with one level of replies and votes. Authors and moderators edit and
// delete; moderators hide.

import { api, el, errMsg, fmtDateTime, setTitle } from "../dom.js";
import { t } from "../i18n.js";
import * as store from "../store.js";
import { categoryText, conditionText, kindText, postCard, priceText, stars, statusText } from "../community/cards.js";
import { photo } from "../community/photos.js";
import { communityNav } from "./community.js";
import { createMap, pin } from "../map.js";

/** @typedef {import("../router.js").PageContext} PageContext */
/** @typedef {import("../types.js").Post} Post */
/** @typedef {import("../types.js").Comment} Comment */

/** @param {PageContext} ctx */
export function mount({ root, params, signal, navigate }) {
  const id = params.id;
  const me = store.get().user;
  const staff = Boolean(me && (me.role === "admin" || me.role === "moderator"));
  root.replaceChildren(el("p", { class: "muted", text: t("common.loading") }));
  const status = el("p", { class: "error", role: "alert" });

  /** @param {unknown} e */
  const fail = (e) => { if (!signal.aborted) status.textContent = errMsg(e); };

  api("GET", `/posts/${encodeURIComponent(id)}`, undefined, { signal }).then(async (/** @type {{ post: Post }} */ { post }) => {
    /** @type {Post[]} */
    let reviews = [];
    if (post.kind === "place") {
      try {
        const place = await api("GET", `/places/${encodeURIComponent(id)}`, undefined, { signal });
        post = place.place.post;
        reviews = place.reviews;
      } catch (e) { fail(e); }
    }
    render(post, reviews);
  }, (e) => {
    if (signal.aborted) return;
    setTitle(t("common.notFound"));
    root.replaceChildren(el("h1", { text: t("post.notFound") }), el("p", {}, el("a", { href: "/c", text: t("post.back") })), status);
    fail(e);
  });

  /** @type {AbortController | null} */
  let drawn = null;
  /** @param {Post} post @param {Post[]} reviews */
  function render(post, reviews) {
    // The previous render's map goes with its elements.
    drawn?.abort();
    const current = drawn = new AbortController();
    signal.addEventListener("abort", () => current.abort(), { once: true, signal: current.signal });
    setTitle(post.title);
    const mine = Boolean(me && me.id === post.author.id);
    const gallery = el("div", { class: "gallery", id: "gallery" }, ...post.images.map((img, i) =>
      el("a", { href: img.variants.large, target: "_blank", rel: "noopener" }, photo(img, i === 0 ? "large" : "medium", { alt: post.title }))));

    const like = el("button", { type: "button", class: post.liked_by_me ? "" : "ghost", id: "like", "aria-pressed": String(post.liked_by_me), disabled: !me });
    const paintLike = () => {
      like.textContent = `♥ ${post.likes}`;
      like.className = post.liked_by_me ? "" : "ghost";
      like.setAttribute("aria-pressed", String(post.liked_by_me));
      like.setAttribute("aria-label", t(post.liked_by_me ? "post.unlike" : "post.like"));
    };
    paintLike();
    like.addEventListener("click", async () => {
      try {
        const r = await api(post.liked_by_me ? "DELETE" : "PUT", `/posts/${post.id}/like`, undefined, { signal });
        post.likes = r.likes;
        post.liked_by_me = r.liked_by_me;
        paintLike();
      } catch (e) { fail(e); }
    });
    const fav = el("button", { type: "button", class: "ghost", id: "favorite", disabled: !me });
    const paintFav = () => { fav.textContent = post.favorited_by_me ? t("post.unfavorite") : t("post.favorite"); fav.setAttribute("aria-pressed", String(post.favorited_by_me)); };
    paintFav();
    fav.addEventListener("click", async () => {
      try {
        const r = await api(post.favorited_by_me ? "DELETE" : "PUT", `/posts/${post.id}/favorite`, undefined, { signal });
        post.favorited_by_me = r.favorited_by_me;
        paintFav();
      } catch (e) { fail(e); }
    });
    const report = el("button", { type: "button", class: "ghost", id: "report", hidden: !me || mine, text: t("post.report") });
    report.addEventListener("click", async () => {
      const reason = prompt(t("post.reportReason"));
      if (!reason) return;
      try {
        await api("POST", `/posts/${post.id}/reports`, { reason }, { signal });
        report.disabled = true;
        report.textContent = t("post.reported");
      } catch (e) { fail(e); }
    });
    const actions = el("div", { class: "post-actions" }, like, fav, report,
      mine || staff ? el("a", { class: "button ghost", href: `/c/p/${post.id}/edit`, id: "edit-post", text: t("post.edit") }) : null,
      mine || staff ? el("button", {
        type: "button", class: "ghost", id: "delete-post", text: t("post.delete"),
        onclick: async () => {
          if (!confirm(t("post.confirmDelete"))) return;
          try { await api("DELETE", `/posts/${post.id}`, undefined, { signal }); navigate("/c"); } catch (e) { fail(e); }
        },
      }) : null,
      staff ? el("button", {
        type: "button", class: "ghost", id: "hide-post", text: post.hidden ? t("post.unhide") : t("post.hide"),
        onclick: async () => {
          try {
            const r = await api("PATCH", `/posts/${post.id}`, { hidden: !post.hidden }, { signal });
            render(r.post, reviews);
          } catch (e) { fail(e); }
        },
      }) : null);

    /** @type {Array<Node | null>} */
    const details = [];
    if (post.place) {
      const p = post.place;
      details.push(el("dl", { class: "facts", id: "place-facts" },
        el("dt", { text: t("compose.category") }), el("dd", { text: categoryText(p.category) }),
        p.address ? el("dt", { text: t("compose.address") }) : null, p.address ? el("dd", { text: p.address }) : null,
        p.hours ? el("dt", { text: t("compose.hours") }) : null, p.hours ? el("dd", { text: p.hours }) : null,
        p.phone ? el("dt", { text: t("compose.phone") }) : null, p.phone ? el("dd", {}, el("a", { href: `tel:${p.phone.replace(/[^0-9+]/g, "")}`, text: p.phone })) : null,
        p.lat != null && p.lng != null ? el("dt", { text: t("post.map") }) : null,
        p.lat != null && p.lng != null ? el("dd", {}, el("a", {
          href: `https://www.openstreetmap.org/?mlat=${p.lat}&mlon=${p.lng}#map=17/${p.lat}/${p.lng}`, target: "_blank", rel: "noopener noreferrer",
          text: `${p.lat.toFixed(5)}, ${p.lng.toFixed(5)}`,
        })) : null),
        el("div", { class: "rating-summary", id: "place-rating" },
          p.rating.count ? stars(p.rating.bayesian) : null,
          el("strong", { text: p.rating.count ? p.rating.bayesian.toFixed(2) : t("post.noReviews") }),
          p.rating.count ? el("span", { class: "muted", text: t("post.ratingDetail", { avg: (p.rating.average || 0).toFixed(1), n: p.rating.count }) }) : null));
      if (p.lat != null && p.lng != null) {
        const at = /** @type {[number, number]} */ ([p.lat, p.lng]);
        const box = el("div", { class: "map place-map", id: "place-map", role: "region", "aria-label": t("post.mapOf", { name: p.name }) });
        details.push(box);
        createMap(box, { center: at, zoom: 16, signal: current.signal }).then((map) => {
          if (map) pin(/** @type {any} */ (window).L, at, { label: p.name }).addTo(map);
        });
      }
    }
    if (post.kind === "review") {
      details.push(el("p", { class: "review-of" }, post.rating ? stars(post.rating) : null, " ",
        el("a", { href: `/c/p/${encodeURIComponent(post.place_id || "")}`, text: post.place_name || "" })));
    }
    if (post.kind === "market") {
      details.push(el("div", { class: "listing" },
        el("div", { class: "price", id: "price", text: priceText(post.price) }),
        el("span", { class: `badge status-${post.status}`, id: "listing-status", text: statusText(post.status) }),
        post.buyer ? el("span", { class: "muted", text: t("market.buyer", { name: post.buyer.username }) }) : null,
        post.condition ? el("span", { class: "muted", text: conditionText(post.condition) }) : null,
        post.neighbourhood ? el("span", { class: "muted", text: post.neighbourhood }) : null));
      if (me && !mine && post.status !== "sold") {
        details.push(el("button", {
          type: "button", id: "contact-seller", text: t("market.contact"),
          onclick: async () => {
            try {
              const r = await api("POST", `/posts/${post.id}/contact`, {}, { signal });
              navigate(`/r/${encodeURIComponent(r.room.slug)}`);
            } catch (e) { fail(e); }
          },
        }));
      }
      if (mine) details.push(statusControls(post));
    }

    const body = el("div", { class: "post-body", id: "post-body" }, ...post.body.split("\n").map((line) => el("p", { text: line })));
    const tags = el("p", { class: "tags" }, ...post.tags.map((x) => el("a", { class: "chip", href: `/c?tag=${encodeURIComponent(x)}`, text: `#${x}` })));
    root.replaceChildren(
      communityNav(""),
      /** @type {Node} */ (el("article", { class: "post", "data-post": post.id, "data-kind": post.kind },
        el("p", { class: "post-kind" }, el("span", { class: `badge kind-${post.kind}`, text: kindText(post.kind) }),
          post.hidden ? el("span", { class: "badge off", text: t("post.hidden") }) : null),
        el("h1", { id: "post-title", text: post.title }),
        el("p", { class: "muted" }, el("a", { href: `/u/${encodeURIComponent(post.author.username)}`, text: post.author.username }), " · ", fmtDateTime(post.created_at)),
        post.images.length ? gallery : null,
        ...details, body, post.tags.length ? tags : null, actions, status)),
      ...(post.kind === "place" ? [reviewsSection(post, reviews)] : []),
      commentsSection(post));
  }

  /** The seller's status buttons. @param {Post} post */
  function statusControls(post) {
    const buyer = el("input", { name: "buyer", placeholder: t("market.buyerName"), "aria-label": t("market.buyerName"), value: post.buyer ? post.buyer.username : "" });
    /** @param {string} s */
    const set = async (s) => {
      /** @type {Record<string, string>} */
      const body = { status: s };
      if (s !== "on_sale" && buyer.value.trim()) body.buyer = buyer.value.trim();
      try {
        const r = await api("PATCH", `/posts/${post.id}`, body, { signal });
        render(r.post, []);
      } catch (e) { fail(e); }
    };
    return el("div", { class: "status-controls", id: "status-controls" },
      el("span", { class: "muted", text: t("market.changeStatus") }), buyer,
      ...(["on_sale", "reserved", "sold"]).map((s) => el("button", {
        type: "button", class: post.status === s ? "" : "ghost", "data-status": s, disabled: post.status === "sold",
        onclick: () => set(s), text: statusText(s),
      })));
  }

  /** @param {Post} place @param {Post[]} reviews */
  function reviewsSection(place, reviews) {
    return el("section", { class: "reviews", id: "reviews" },
      el("div", { class: "page-head" }, el("h2", { text: t("post.reviews") }),
        me ? el("a", { class: "button", id: "write-review", href: `/c/new?kind=review&place=${encodeURIComponent(place.id)}`, text: t("post.writeReview") }) : null),
      el("ul", { class: "posts" }, reviews.length ? reviews.map(postCard) : el("li", { class: "muted", text: t("post.noReviews") })));
  }

  /** @param {Post} post */
  function commentsSection(post) {
    const list = el("ol", { class: "comments", id: "comments" });
    const error = el("p", { class: "error", role: "alert" });
    const load = async () => {
      try {
        /** @type {{ comments: Comment[] }} */
        const r = await api("GET", `/posts/${post.id}/comments`, undefined, { signal });
        list.replaceChildren(...r.comments.map((c) => commentItem(c, load)));
      } catch (e) { if (!signal.aborted) error.textContent = errMsg(e); }
    };
    const form = me ? commentForm(post.id, null, load) : el("p", {}, el("a", { href: "/#login", text: t("post.loginToComment") }));
    load();
    return el("section", { class: "comments-section" }, el("h2", { text: t("post.comments") }), form, list, error);
  }

  /** @param {string} postId @param {string | null} parentId @param {() => void} done */
  function commentForm(postId, parentId, done) {
    const body = el("textarea", { name: "comment", rows: 2, maxlength: 2000, placeholder: parentId ? t("post.replyPlaceholder") : t("post.commentPlaceholder"), "aria-label": t("post.comments") });
    const error = el("span", { class: "error" });
    const send = el("button", { type: "submit", text: parentId ? t("post.reply") : t("post.sendComment") });
    const form = el("form", { class: "comment-form" }, body, send, error);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      send.disabled = true;
      try {
        await api("POST", `/posts/${postId}/comments`, parentId ? { body: body.value, parent_id: parentId } : { body: body.value }, { signal });
        body.value = "";
        error.textContent = "";
        done();
      } catch (e) { if (!signal.aborted) error.textContent = errMsg(e); }
      send.disabled = false;
    });
    return form;
  }

  /**
   * @param {Comment} c
   * @param {() => void} reload
   * @returns {HTMLLIElement}
   */
  function commentItem(c, reload) {
    const mine = Boolean(me && me.id === c.author.id);
    /** @param {number} v @param {string} label */
    const vote = (v, label) => el("button", {
      type: "button", class: c.my_vote === v ? "vote on" : "vote", disabled: !me, "aria-pressed": String(c.my_vote === v), "aria-label": label,
      text: v > 0 ? `▲ ${c.up}` : `▼ ${c.down}`,
      onclick: async () => {
        try { await api("PUT", `/comments/${c.id}/vote`, { vote: c.my_vote === v ? 0 : v }, { signal }); reload(); } catch (e) { fail(e); }
      },
    });
    const replySlot = el("div", {});
    if (c.deleted) {
      return el("li", { class: "comment deleted", "data-comment": c.id },
        el("p", { class: "muted", text: t("post.deletedComment") }),
        c.replies && c.replies.length ? el("ol", { class: "replies" }, ...c.replies.map((r) => commentItem(r, reload))) : null);
    }
    return el("li", { class: c.hidden ? "comment hidden" : "comment", "data-comment": c.id },
      el("div", { class: "comment-head" },
        el("strong", { text: c.author.username }), el("span", { class: "muted", text: fmtDateTime(c.created_at) }),
        c.hidden ? el("span", { class: "badge off", text: t("post.hidden") }) : null),
      el("div", { class: "comment-body" }, ...c.body.split("\n").map((line) => el("p", { text: line }))),
      el("div", { class: "comment-tools" }, vote(1, t("post.voteUp")), vote(-1, t("post.voteDown")),
        me && !c.parent_id ? el("button", { type: "button", class: "ghost", text: t("post.reply"), onclick: () => replySlot.replaceChildren(commentForm(c.post_id, c.id, reload)) }) : null,
        mine || staff ? el("button", {
          type: "button", class: "ghost", text: t("post.delete"),
          onclick: async () => { try { await api("DELETE", `/comments/${c.id}`, undefined, { signal }); reload(); } catch (e) { fail(e); } },
        }) : null,
        staff ? el("button", {
          type: "button", class: "ghost", text: c.hidden ? t("post.unhide") : t("post.hide"),
          onclick: async () => { try { await api("PATCH", `/comments/${c.id}`, { hidden: !c.hidden }, { signal }); reload(); } catch (e) { fail(e); } },
        }) : null,
        me && !mine ? el("button", {
          type: "button", class: "ghost", text: t("post.report"),
          onclick: async () => {
            const reason = prompt(t("post.reportReason"));
            if (!reason) return;
            try { await api("POST", `/posts/${c.post_id}/reports`, { reason, comment_id: c.id }, { signal }); } catch (e) { fail(e); }
          },
        }) : null),
      replySlot,
      c.replies && c.replies.length ? el("ol", { class: "replies" }, ...c.replies.map((r) => commentItem(r, reload))) : null);
  }
}
