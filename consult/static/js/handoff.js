/* Live handoff states: the ticket page's panel and the queue's badges follow the officers
   without a reload. Short polling every half second: the ticket page sends the version it has
   and gets 204 (no body) until something changed, so a poll costs one indexed lookup. */
(function () {
  "use strict";
  var INTERVAL = 500;

  function poll(url, handle) {
    var busy = false;
    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(url(), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.status === 200 ? response.json() : null; })
        .then(function (data) { if (data) { handle(data); } })
        .catch(function () { /* offline for a moment: the next tick tries again */ })
        .then(function () { busy = false; });
    }
    setInterval(tick, INTERVAL);
  }

  // The ticket's own URL, not this page's: a form answered with errors (422) is shown at the
  // form's POST address, which a GET would not find.
  function refreshTimeline(ticketUrl) {
    var timeline = document.getElementById("timeline");
    if (!timeline || !ticketUrl) { return; }
    fetch(ticketUrl, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("timeline");
        if (fresh) { timeline.innerHTML = fresh.innerHTML; }
      });
  }

  function panel() {
    var section = document.querySelector(".handoff-panel[data-live-url]");
    if (!section) { return; }
    var live = section.querySelector(".handoff-live");
    var version = section.getAttribute("data-version");
    poll(function () {
      return section.getAttribute("data-live-url") + "?since=" + encodeURIComponent(version);
    }, function (data) {
      if (data.version === version) { return; }
      version = data.version;
      // Keep what the consultant is typing in an open form; replace the list otherwise.
      var active = document.activeElement;
      if (active && live.contains(active) && (active.tagName === "TEXTAREA" || active.tagName === "INPUT")) {
        return;
      }
      live.innerHTML = data.html;
      refreshTimeline(section.getAttribute("data-ticket-url"));
    });
  }

  function queue() {
    var rows = document.querySelectorAll("tr[data-ticket-id]");
    if (!rows.length) { return; }
    var ids = Array.prototype.map.call(rows, function (row) { return row.getAttribute("data-ticket-id"); });
    poll(function () { return "/handoffs/live.json?tickets=" + ids.join(","); }, function (data) {
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

  document.addEventListener("DOMContentLoaded", function () { panel(); queue(); filterSelect(); });
})();
