// Leakwatch dashboard behaviour, on every page. Plain JavaScript, no
// library: the pages work without it; it adds confirmation of destructive
// actions and live updates.
//
// Confirmation: a form with data-confirm="question" asks before it is
// submitted (captured first, so other submit handlers never see a refused
// submission).
//
// Live updates: an element with data-live="/incidents/events?…" opens a
// server-sent event stream (EventSource reconnects by itself). Each change
// re-fetches the page at its current URL and swaps the elements marked
// data-live-part (by id), then marks the changed rows and shows what
// changed in the [data-live-badge] element. Changes arriving together are
// fetched once.
"use strict";

document.addEventListener("submit", function (ev) {
  const form = ev.target;
  if (!form.matches || !form.matches("form[data-confirm]")) return;
  if (!window.confirm(form.dataset.confirm)) {
    ev.preventDefault();
    ev.stopImmediatePropagation();
  }
}, true);

// Select-all checkbox for the queue's bulk actions.
document.addEventListener("change", function (ev) {
  const box = ev.target;
  if (!box.matches || !box.matches("input[data-select-all]")) return;
  document.querySelectorAll("input[name=id][form='" + box.dataset.selectAll + "']").forEach(function (b) { b.checked = box.checked; });
});

(function () {
  const host = document.querySelector("[data-live]");
  if (!host || !window.EventSource) return;
  const badge = document.querySelector("[data-live-badge]");
  const pending = new Map(); // incident id -> set of what changed
  let timer = null;
  let total = 0;

  function label(id, what) {
    return "#" + id + " " + Array.from(what).join(", ");
  }

  async function refresh() {
    timer = null;
    host.dataset.liveRefreshes = String(Number(host.dataset.liveRefreshes || 0) + 1);
    const changes = new Map(pending);
    pending.clear();
    let doc;
    try {
      const resp = await fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
      if (!resp.ok) { host.dataset.liveError = "HTTP " + resp.status; return; }
      doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    } catch (e) {
      host.dataset.liveError = String(e);
      return;
    }
    document.querySelectorAll("[data-live-part]").forEach(function (el) {
      const fresh = doc.getElementById(el.id);
      if (fresh) el.replaceWith(document.importNode(fresh, true));
    });
    const notes = [];
    changes.forEach(function (what, id) {
      notes.push(label(id, what));
      const row = document.getElementById("incident-" + id);
      if (row) {
        row.classList.add("changed");
        const cell = row.querySelector(".changes");
        if (cell) cell.textContent = Array.from(what).join(", ");
      }
    });
    total += changes.size;
    if (badge && notes.length) {
      badge.hidden = false;
      badge.textContent = "Live: " + notes.join("; ");
      badge.dataset.count = String(total);
    }
  }

  const es = new EventSource(host.dataset.live);
  // Browsers allow six connections per HTTP/1.1 server: never leave a
  // stream open behind a page that is gone.
  window.addEventListener("pagehide", function () { es.close(); });
  es.addEventListener("change", function (ev) {
    let ch;
    try { ch = JSON.parse(ev.data); } catch (e) { return; }
    host.dataset.liveEvents = String(Number(host.dataset.liveEvents || 0) + 1);
    const set = pending.get(ch.incident_id) || new Set();
    (ch.what || []).forEach(function (w) { set.add(w); });
    pending.set(ch.incident_id, set);
    if (!timer) timer = setTimeout(function () {
      refresh().catch(function (e) { host.dataset.liveError = String(e); });
    }, 250);
  });
  es.addEventListener("ready", function () { host.dataset.liveReady = "1"; });
})();
