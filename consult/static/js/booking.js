/* Live bookings: the desk's day and week views, the 今日 page's bookings and a branch office's
   page follow a booking made, moved, cancelled or received elsewhere, without a reload. The
   kernel's live channel says which day changed ("booking.changed"); a part of the page marked
   data-booking-days that shows that day fetches itself again and says so. These parts hold
   no form, so nothing typed is lost. */
(function () {
  "use strict";

  var m = window.madoguchi = window.madoguchi || {};
  m.live = m.live || { _queued: [] };
  var on = m.live.on || function (kind, fn) { (m.live._queued = m.live._queued || []).push([kind, fn]); };

  var timers = {};
  var SAID = {
    created: "新しい予約が入りました",
    moved: "予約の日時が変更されました",
    cancelled: "予約が取り消されました",
    checked_in: "予約の方が受付されました",
    no_show: "無断欠席が記録されました"
  };

  function stamp() {
    var now = new Date();
    var mm = String(now.getMinutes());
    return now.getHours() + ":" + (mm.length < 2 ? "0" + mm : mm);
  }

  function say(part, text, failed) {
    var status = part.querySelector("[data-booking-status]");
    if (!status) {
      status = document.createElement("p");
      status.setAttribute("data-booking-status", "");
      status.setAttribute("role", "status");
      part.insertBefore(status, part.firstChild);
    }
    status.className = failed ? "notice notice--error" : "notice notice--info";
    status.textContent = text;
  }

  function refresh(part, action) {
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status !== 200) { throw new Error(String(response.status)); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(part.id);
        if (!fresh) { throw new Error("missing"); }
        part.innerHTML = fresh.innerHTML;
        part.setAttribute("data-booking-days", fresh.getAttribute("data-booking-days") || "");
        say(part, (SAID[action] || "予約が更新されました") + "（" + stamp() + "）。表示を更新しました。");
      })
      .catch(function () {
        say(part, "予約の変更を読み込めませんでした。ページを再読み込みしてください。", true);
      });
  }

  on("booking.changed", function (p) {
    if (!p || !p.day) { return; }
    var parts = document.querySelectorAll("[data-booking-days]");
    Array.prototype.forEach.call(parts, function (part) {
      var days = (part.getAttribute("data-booking-days") || "").split(" ");
      if (days.indexOf(p.day) === -1 || !part.id) { return; }
      // One change is several events (a move names both days): one fetch.
      clearTimeout(timers[part.id]);
      timers[part.id] = setTimeout(function () { refresh(part, p.action); }, 150);
    });
  });
}());
