/* Help alerts on every staff page: Alt+H raises one; /alerts/live.json shows open alerts to the
   support room and supervisors (with 向かいます / 到着), and to the consultant who asked, who is
   coming. It is fetched when the page opens and whenever the live channel (live.js) says an
   alert or a long session changed: no poll of its own. A new alert sounds for responders. */
(function () {
  "use strict";

  var region = document.getElementById("alerts-live");
  if (!region) return;
  var feed = region.dataset.feed;
  var csrf = region.dataset.csrf;
  var since = 0;
  var known = null; // ids of the alerts shown, to sound only for new ones

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function post(url) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
    }).then(poll);
  }

  function actionUrl(template, id, kind) {
    var url = template.replace("/0/", "/" + id + "/");
    return kind ? url.replace(/\/coming$/, "/" + kind) : url;
  }

  function button(label, url, done) {
    var b = el("button", "button button--small " + (done ? "button--ghost" : "button--primary"), label);
    b.type = "button";
    b.disabled = !!done;
    b.addEventListener("click", function () { b.disabled = true; post(url); });
    return b;
  }

  function renderAlert(a, responder) {
    var card = el("div", "alert-live__item" + (a.new ? " is-new" : ""));
    card.setAttribute("role", "alert");
    var title = el("p", "alert-live__title");
    title.appendChild(el("strong", null, a.own ? "応援を要請中：" + a.place : "応援要請：" + a.place));
    var meta = " " + a.raised_at + "（" + a.raised_by + "）";
    title.appendChild(document.createTextNode(meta));
    if (a.url) {
      title.appendChild(document.createTextNode(" "));
      var link = el("a", null, "相談 " + a.ticket);
      link.href = a.url;
      title.appendChild(link);
    }
    card.appendChild(title);
    var who = el("p", "alert-live__responses");
    if (a.responses.length) {
      who.textContent = a.responses.map(function (r) { return r.name + "：" + r.label; }).join("／");
    } else {
      who.textContent = a.own ? "通知しました。応答を待っています…" : "まだ誰も応答していません。";
    }
    card.appendChild(who);
    var actions = el("div", "alert-live__actions");
    if (responder) {
      actions.appendChild(button("向かいます", actionUrl(region.dataset.respond, a.id, "coming"), a.answered.indexOf("coming") >= 0));
      actions.appendChild(button("到着", actionUrl(region.dataset.respond, a.id, "arrived"), a.answered.indexOf("arrived") >= 0));
    }
    if (a.own || responder) {
      var close = button("対応終了", actionUrl(region.dataset.close, a.id), false);
      close.className = "button button--small button--secondary";
      actions.appendChild(close);
    }
    card.appendChild(actions);
    return card;
  }

  function render(data) {
    var ids = data.alerts.map(function (a) { return a.id; });
    var fresh = known !== null && ids.some(function (id) { return known.indexOf(id) < 0; });
    var longs = (data.long_sessions || []).map(function (s) { return "l" + s.id; });
    fresh = fresh || (known !== null && longs.some(function (id) { return known.indexOf(id) < 0; }));
    known = ids.concat(longs);
    var live = window.madoguchi && window.madoguchi.live;
    if (fresh && data.responder && live && live.beep) {
      live.beep(3);
      live.notify("応援要請", "応援要請が届きました。");
    }
    region.textContent = "";
    data.alerts.forEach(function (a) { region.appendChild(renderAlert(a, data.responder)); });
    (data.long_sessions || []).forEach(function (s) {
      var item = el("div", "alert-live__item alert-live__item--long");
      var link = el("a", null, "長時間対応：相談 " + s.number + " が" + s.minutes + "分を超えました");
      link.href = s.url;
      item.appendChild(link);
      region.appendChild(item);
    });
    region.classList.toggle("is-active", region.childElementCount > 0);
    since = Math.max(since, data.latest || 0);
  }

  function poll() {
    return fetch(feed + "?since=" + since, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) render(data); })
      .catch(function () { /* network blip: the next round retries */ });
  }

  poll();
  var pending = null;
  function soon() { clearTimeout(pending); pending = setTimeout(poll, 100); }
  // This script may run before live.js: queue the listeners, live.js takes them up.
  var m = window.madoguchi = window.madoguchi || {};
  m.live = m.live || { _queued: [] };
  var on = m.live.on || function (kind, fn) { m.live._queued.push([kind, fn]); };
  on("alert", soon);
  on("long_session", soon);

  var form = document.getElementById("help-form");
  if (form) {
    document.addEventListener("keydown", function (e) {
      if (e.altKey && !e.ctrlKey && !e.metaKey && (e.key === "h" || e.key === "H" || e.code === "KeyH")) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
  }
})();
