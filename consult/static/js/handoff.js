/* Live handoff states: the ticket page's panel, timeline and header, the queue's rows and badges
   and the officer's inbox follow the others without a reload. They do not poll: the kernel's
   live channel (live.js) says when something changed, and the page then fetches the part once. */
(function () {
  "use strict";

  function onLive(kind, fn) {
    var live = window.madoguchi && window.madoguchi.live;
    if (live && live.on) { live.on(kind, fn); }
  }

  // Several events of one change (the handoff, its timeline entry) make one fetch.
  function debounced(fn, wait) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, wait || 150);
    };
  }

  function fetchJson(url, handle) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.status === 200 ? response.json() : null; })
      .then(function (data) { if (data) { handle(data); } })
      .catch(function () { /* offline for a moment: the next event fetches again */ });
  }

  // The header's badges (status, assignee) and the timeline, from the ticket's live fragment
  // (not the whole page again; its view is audited once per ten minutes, not once per event).
  // A notice above the ticket's header (merged away, its citizen merged): said once, kept
  // until the page is left; the forms below, and what is typed in them, are not touched.
  function notice(text, href, linkText) {
    var head = document.querySelector(".ticket-head");
    if (!head || !text) { return; }
    var box = document.getElementById("live-ticket-notice");
    if (!box) {
      box = document.createElement("div");
      box.id = "live-ticket-notice";
      box.className = "notice notice--info";
      box.setAttribute("role", "status");
      head.parentNode.insertBefore(box, head);
    }
    box.textContent = text + (href ? " " : "");
    if (href) {
      var link = document.createElement("a");
      link.href = href;
      link.textContent = linkText || href;
      box.appendChild(link);
    }
  }

  function refreshHead(liveUrl) {
    var head = document.querySelector(".ticket-head__meta");
    if (!head || !liveUrl) { return; }
    fetchJson(liveUrl, function (data) {
      if (data.moved) { notice(data.moved.text, data.moved.href, data.moved.link); }
      var fresh = new DOMParser().parseFromString(data.head, "text/html").querySelector(".ticket-head__meta");
      if (fresh && fresh.innerHTML !== head.innerHTML) { head.innerHTML = fresh.innerHTML; }
      var timeline = document.getElementById("timeline");
      var freshTimeline = new DOMParser().parseFromString(data.timeline, "text/html").getElementById("timeline");
      if (timeline && freshTimeline && timeline.innerHTML !== freshTimeline.innerHTML) {
        timeline.innerHTML = freshTimeline.innerHTML;
      }
    });
  }

  function panel() {
    var head = document.querySelector(".ticket-head[data-ticket-id]");
    if (!head) { return; }
    var ticketId = Number(head.getAttribute("data-ticket-id"));
    var section = document.querySelector(".handoff-panel[data-live-url]");
    var liveUrl = head.getAttribute("data-live-url");
    var version = section ? section.getAttribute("data-version") : null;
    function refreshPanel() {
      if (!section) { return; }
      var live = section.querySelector(".handoff-live");
      fetchJson(section.getAttribute("data-live-url") + "?since=" + encodeURIComponent(version), function (data) {
        if (data.version === version) { return; }
        version = data.version;
        // Keep what the consultant is typing in an open form; replace the list otherwise.
        var active = document.activeElement;
        if (active && live.contains(active) && (active.tagName === "TEXTAREA" || active.tagName === "INPUT")) {
          return;
        }
        live.innerHTML = data.html;
      });
    }
    var refresh = debounced(function () { refreshPanel(); refreshHead(liveUrl); });
    function mine(payload) { return payload && payload.ticket_id === ticketId; }
    onLive("handoff", function (payload) { if (mine(payload)) { refresh(); } });
    onLive("ticket", function (payload) { if (mine(payload)) { refresh(); } });
    onLive("ticket.citizen_merged", function (payload) {
      if (mine(payload)) { notice(payload.notice, "/citizens/" + payload.citizen_id, "相談者を開く"); }
    });
  }

  function badges() {
    var rows = document.querySelectorAll("tr[data-ticket-id]");
    if (!rows.length) { return; }
    var ids = Array.prototype.map.call(rows, function (row) { return row.getAttribute("data-ticket-id"); });
    fetchJson("/handoffs/live.json?tickets=" + ids.join(","), function (data) {
      Array.prototype.forEach.call(rows, function (row) {
        var slot = row.querySelector(".live-badges");
        if (!slot) { return; }
        var items = data[row.getAttribute("data-ticket-id")] || [];
        var text = items.map(function (item) {
          var label = item.department + "：" + item.label;
          if (item.state === "on_the_way" && item.eta_at) { label += "（" + item.eta_at + "頃）"; }
          return label;
        });
        var joined = text.join(" / ");
        if (slot.getAttribute("data-text") === joined) { return; }
        slot.setAttribute("data-text", joined);
        slot.textContent = "";
        items.forEach(function (item, index) {
          var badge = document.createElement("span");
          badge.className = "badge badge--handoff-" + item.state;
          badge.textContent = text[index];
          slot.appendChild(badge);
        });
      });
    });
  }

  // 相談一覧: new consultations from every channel come in at the top, changed rows change in
  // place, and the handoff badges follow.
  function queue() {
    if (!document.querySelector("table.queue-table, [data-live-queue]")) { return; }
    var refresh = debounced(function () {
      var live = window.madoguchi && window.madoguchi.live;
      if (live && live.refreshRows && document.querySelector("table.queue-table, [data-live-empty]")) {
        live.refreshRows("table.queue-table", "data-ticket-id").then(badges);
      } else {
        badges();
      }
    }, 300);
    badges();
    onLive("ticket", refresh);
    onLive("handoff", refresh);
  }

  // 引継ぎ一覧 of an officer: a new handoff for the department appears at once, with a sound,
  // a count in the tab's title and the browser's notification when allowed.
  function inbox() {
    var tabs = document.getElementById("handoff-tabs");
    if (!tabs) { return; }
    var title = document.title;
    var unseen = 0;
    function titled() { document.title = (unseen ? "(" + unseen + ") " : "") + title; }
    window.addEventListener("focus", function () { unseen = 0; titled(); });
    var refresh = debounced(function () {
      var live = window.madoguchi.live;
      live.refreshRows("#handoff-inbox", "data-handoff-id").then(function (added) {
        fetch(window.location.href, { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (!html) { return; }
            var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("handoff-tabs");
            if (fresh) { tabs.innerHTML = fresh.innerHTML; }
          });
        if (!added.length) { return; }
        unseen += added.length;
        titled();
        live.beep(2);
        var text = added.length + "件の引継ぎが届きました。";
        if (lastPlace && lastPlace.room) {
          text += "相談室" + lastPlace.room +
            (lastPlace.reception_number ? "・受付番号 " + lastPlace.reception_number : "") +
            (lastPlace.consultant ? "（担当 " + lastPlace.consultant + "）" : "");
        }
        live.notify("新しい引継ぎがあります", text);
      });
    });
    // 来庁して対応 carries where to go: the notification says it too.
    var lastPlace = null;
    onLive("handoff", function (payload) {
      if (payload && payload.state === "requested" && payload.room) { lastPlace = payload; }
      refresh();
    });
    if ("Notification" in window && Notification.permission === "default") {
      var ask = document.getElementById("handoff-notify");
      if (ask) {
        ask.hidden = false;
        ask.addEventListener("click", function () { Notification.requestPermission(); ask.hidden = true; });
      }
    }
  }

  function filterSelect() {
    var inputs = document.querySelectorAll("input[data-filter-select]");
    Array.prototype.forEach.call(inputs, function (input) {
      var select = document.querySelector("select[name='" + input.getAttribute("data-filter-select") + "']");
      if (!select) { return; }
      input.addEventListener("input", function () {
        var needle = input.value.trim();
        Array.prototype.forEach.call(select.options, function (option) {
          option.hidden = needle !== "" && option.text.indexOf(needle) === -1 && !option.selected;
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { panel(); queue(); inbox(); filterSelect(); });
})();
