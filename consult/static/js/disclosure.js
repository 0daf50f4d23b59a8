/* 開示請求の書類: the worker makes the bundle and publishes "disclosure.changed" when it is
   ready or has failed; the disclosure page of that citizen then reloads itself, to show the
   download or the reason. No poll of its own: the kernel's live channel says when. */
(function () {
  "use strict";

  var m = window.madoguchi = window.madoguchi || {};
  m.live = m.live || { _queued: [] };
  var on = m.live.on || function (kind, fn) { (m.live._queued = m.live._queued || []).push([kind, fn]); };

  on("disclosure.changed", function (p) {
    var box = document.getElementById("disclosure-jobs");
    if (!box || !p) { return; }
    if (String(p.citizen) !== box.getAttribute("data-disclosure-citizen")) { return; }
    if (p.status === "pending") { return; }
    window.location.reload();
  });
}());
