/* 折り返し reminders: the worker publishes "callback.due" to the person responsible ten minutes
   before a callback is due and when it is overdue; this shows it on whatever page they have
   open, with a link to the case, and sounds twice. Only the number and times travel. */
(function () {
  "use strict";

  var m = window.madoguchi = window.madoguchi || {};
  m.live = m.live || { _queued: [] };
  var on = m.live.on || function (kind, fn) { (m.live._queued = m.live._queued || []).push([kind, fn]); };

  function box() {
    var el = document.getElementById("live-callbacks");
    if (!el) {
      el = document.createElement("div");
      el.id = "live-callbacks";
      el.setAttribute("role", "alert");
      document.body.appendChild(el);
    }
    return el;
  }

  on("callback.due", function (p) {
    if (!p || !p.number) { return; }
    var overdue = p.state === "overdue";
    var item = document.createElement("p");
    item.className = "live-callback " + (overdue ? "live-callback--overdue" : "live-callback--soon");
    item.setAttribute("data-callback-id", String(p.callback_id));
    item.appendChild(document.createTextNode(
      (overdue ? "折り返しの期限を過ぎています：" : "折り返しの期限が近づいています（10分前）：")
    ));
    var link = document.createElement("a");
    link.href = "/tickets/" + encodeURIComponent(p.number);
    link.textContent = "相談番号 " + p.number;
    item.appendChild(link);
    item.appendChild(document.createTextNode("（期限 " + (p.due_label || "") + "）"));
    var close = document.createElement("button");
    close.type = "button";
    close.className = "button button--ghost";
    close.textContent = "閉じる";
    close.addEventListener("click", function () { item.remove(); });
    item.appendChild(close);
    box().appendChild(item);
    if (m.live.beep) { m.live.beep(2); }
    if (m.live.notify) { m.live.notify("折り返し", "相談番号 " + p.number); }
  });

  /* A colleague handed a case to this person ("ticket.handed_over"): the number and who, with a
     link; the note itself is on the ticket's timeline, never in the event. */
  on("ticket.handed_over", function (p) {
    if (!p || !p.number) { return; }
    var item = document.createElement("p");
    item.className = "live-callback live-callback--soon";
    item.setAttribute("data-handover", String(p.ticket_id));
    item.appendChild(document.createTextNode("相談を引き継ぎました" + (p.by ? "（" + p.by + "から）" : "") + "："));
    var link = document.createElement("a");
    link.href = "/tickets/" + encodeURIComponent(p.number);
    link.textContent = "相談番号 " + p.number;
    item.appendChild(link);
    var close = document.createElement("button");
    close.type = "button";
    close.className = "button button--ghost";
    close.textContent = "閉じる";
    close.addEventListener("click", function () { item.remove(); });
    item.appendChild(close);
    box().appendChild(item);
    if (m.live.beep) { m.live.beep(1); }
    if (m.live.notify) { m.live.notify("引継ぎ", "相談番号 " + p.number); }
  });
})();
