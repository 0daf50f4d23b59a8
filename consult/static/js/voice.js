/* Live requests to the city and letters to the mayor (要望・手紙): the ticket page's panel and
   the /requests lists follow a request registered, given its department, or answered by
   someone else, without a reload. The kernel's live channel says which request changed
   ("citizen_request.<action>", ids only); the part then fetches itself once and says what
   changed. A part of the panel holding a form with typed text is kept as typed. */
(function () {
  "use strict";

  var m = window.madoguchi = window.madoguchi || {};
  m.live = m.live || { _queued: [] };
  var on = m.live.on || function (kind, fn) { (m.live._queued = m.live._queued || []).push([kind, fn]); };

  var SAID = {
    marked: "要望・手紙として登録されました",
    assigned: "担当課が決まりました",
    unassigned: "担当課への引継ぎが戻され、担当課は未定になりました",
    answered: "回答が記録されました"
  };

  function stamp() {
    var now = new Date();
    var mm = String(now.getMinutes());
    return now.getHours() + ":" + (mm.length < 2 ? "0" + mm : mm);
  }

  function say(box, before, text, failed) {
    var status = box.querySelector("[data-voice-status]");
    if (!status) {
      status = document.createElement("p");
      status.setAttribute("data-voice-status", "");
      status.setAttribute("role", "status");
      box.insertBefore(status, before || box.firstChild);
    }
    status.className = failed ? "notice notice--error" : "notice notice--info";
    status.textContent = text;
  }

  // Something typed, or chosen other than what the page put there.
  function dirty(part) {
    var fields = part.querySelectorAll("textarea, select, input");
    return Array.prototype.some.call(fields, function (field) {
      if (field.tagName === "SELECT") {
        if (field.multiple) {
          return Array.prototype.some.call(field.options, function (option) {
            return option.selected !== option.defaultSelected;
          });
        }
        // A single select with no option marked selected shows its first one.
        var shown = 0;
        Array.prototype.forEach.call(field.options, function (option, index) {
          if (option.defaultSelected) { shown = index; }
        });
        return field.options.length > 0 && field.selectedIndex !== shown;
      }
      if (field.type === "hidden" || field.type === "submit") { return false; }
      if (field.type === "checkbox" || field.type === "radio") {
        return field.checked !== field.defaultChecked;
      }
      // Any text counts: a form refused a moment ago (422) was drawn with the text as typed.
      return field.value !== field.defaultValue || field.value.trim() !== "";
    });
  }

  function debounced(fn, wait) {
    var timer = null;
    var last = null;
    return function (payload) {
      last = payload;
      clearTimeout(timer);
      timer = setTimeout(function () { fn(last); }, wait);
    };
  }

  // --- the ticket page's panel ----------------------------------------------------------------

  function panel() {
    var section = document.querySelector("#voice[data-live-url]");
    if (!section) { return; }
    var ticketId = Number(section.getAttribute("data-ticket-id"));
    var refresh = debounced(function (payload) {
      fetch(section.getAttribute("data-live-url"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.status !== 200) { throw new Error(String(response.status)); }
          return response.text();
        })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("voice");
          if (!fresh) { throw new Error("missing"); }
          var heading = section.querySelector("h2");
          var freshHeading = fresh.querySelector("h2");
          if (heading && freshHeading && heading.innerHTML !== freshHeading.innerHTML) {
            heading.innerHTML = freshHeading.innerHTML;
          }
          var kept = false;
          var freshParts = fresh.querySelectorAll("[data-voice-part]");
          Array.prototype.forEach.call(freshParts, function (freshPart, index) {
            var name = freshPart.getAttribute("data-voice-part");
            var mine = section.querySelector("[data-voice-part='" + name + "']");
            if (!mine) {
              // A part the page did not have (the facts of a request registered elsewhere):
              // in the fresh order, before the next part the page has.
              var node = document.importNode(freshPart, true);
              var next = null;
              for (var i = index + 1; i < freshParts.length && !next; i += 1) {
                next = section.querySelector("[data-voice-part='" + freshParts[i].getAttribute("data-voice-part") + "']");
              }
              section.insertBefore(node, next);
              return;
            }
            if (mine.innerHTML === freshPart.innerHTML) { return; }
            if (dirty(mine)) { kept = true; return; } // what the consultant typed stays
            mine.innerHTML = freshPart.innerHTML;
          });
          var text = (SAID[payload && payload.action] || "要望・手紙が更新されました") +
            "（" + stamp() + "）。表示を更新しました。";
          if (kept) { text += "入力中の内容はそのまま残しています。"; }
          say(section, heading ? heading.nextSibling : null, text);
        })
        .catch(function () {
          say(section, null, "要望・手紙の変更を読み込めませんでした。ページを再読み込みしてください。", true);
        });
    }, 150);
    on("citizen_request", function (payload) {
      if (payload && payload.ticket_id === ticketId) { refresh(payload); }
    });
  }

  // --- the /requests lists ----------------------------------------------------------------------

  function list() {
    var box = document.querySelector("[data-requests-live]");
    if (!box) { return; }
    var refresh = debounced(function (payload) {
      var live = window.madoguchi.live;
      if (!live.refreshRows) { return; }
      live.refreshRows("#requests-table", "data-request-id").then(function (added) {
        var action = payload && payload.action;
        var text = added.length ? added.length + "件の要望・手紙が一覧に加わりました"
          : (SAID[action] || "要望・手紙が更新されました");
        text += "（" + stamp() + "）。";
        if (box.querySelector("tr.is-stale")) {
          text += "薄く表示した行は、この一覧の条件に当たらなくなりました。";
        }
        say(box, null, text);
      }).catch(function () {
        say(box, null, "要望・手紙の変更を読み込めませんでした。ページを再読み込みしてください。", true);
      });
    }, 300);
    on("citizen_request", refresh);
  }

  document.addEventListener("DOMContentLoaded", function () { panel(); list(); });
}());
