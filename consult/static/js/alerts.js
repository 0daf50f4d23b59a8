/* Help alerts and long-session warnings on every staff page.

   - Alt+H or the button raises an alert with fetch: the page stays, nothing typed is lost. The
     place chosen in the select is remembered on this device (localStorage); on a counter visit in
     progress the server uses the visit's room instead.
   - /alerts/live.json is fetched when the page opens and whenever the live channel (live.js) says
     an alert or a long session changed: no poll of its own.
   - The items stack in the page's flow above the content (never over the menu or a form); each
     can be minimised into the tray in the header, which stays reachable and counts them.
   - Responders hear a beep for a new alert, a loud one when an alert escalates. */
(function () {
  "use strict";

  var region = document.getElementById("alerts-live");
  if (!region) return;
  var tray = document.getElementById("alerts-tray");
  var trayButton = tray && tray.querySelector("button");
  var feed = region.dataset.feed;
  var csrf = region.dataset.csrf;
  var since = 0;
  var known = null; // keys of the items shown, to sound only for new ones
  var MIN_KEY = "madoguchi.alerts.minimised";
  var PLACE_KEY = "madoguchi.help.place";

  // The stack belongs at the top of the content, under the menu.
  var main = document.getElementById("main");
  if (main) main.insertBefore(region, main.firstChild);
  // The tray lives in the header, beside the user's name: it covers nothing.
  var userBox = document.querySelector(".site-header__user");
  if (tray && userBox) {
    userBox.insertBefore(tray, userBox.firstChild);
    tray.classList.add("alert-tray--header");
  }

  function store(kind) {
    try { return window[kind]; } catch (e) { return null; }
  }
  function minimised() {
    var s = store("sessionStorage");
    try { return JSON.parse((s && s.getItem(MIN_KEY)) || "[]"); } catch (e) { return []; }
  }
  function setMinimised(list) {
    var s = store("sessionStorage");
    if (s) { try { s.setItem(MIN_KEY, JSON.stringify(list.slice(-50))); } catch (e) { /* full */ } }
  }

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

  function minimiseButton(key) {
    var b = el("button", "button button--small button--ghost alert-live__minimise", "最小化");
    b.type = "button";
    b.title = "画面上部の通知トレイにしまいます";
    b.addEventListener("click", function () {
      var list = minimised();
      if (list.indexOf(key) < 0) list.push(key);
      setMinimised(list);
      poll();
    });
    return b;
  }

  function renderAlert(a, responder, key) {
    var card = el("div", "alert-live__item" + (a.new ? " is-new" : "") + (a.escalated ? " is-escalated" : ""));
    card.setAttribute("role", "alert");
    card.dataset.key = key;
    var title = el("p", "alert-live__title");
    title.appendChild(el("strong", null, a.own ? "応援を要請中：" + a.place : "応援要請：" + a.place));
    title.appendChild(document.createTextNode(" " + a.raised_at + "（" + a.raised_by + "）"));
    if (a.url) {
      title.appendChild(document.createTextNode(" "));
      var link = el("a", null, "相談 " + a.ticket);
      link.href = a.url;
      title.appendChild(link);
    }
    card.appendChild(title);
    if (a.escalated) {
      card.appendChild(el("p", "alert-live__escalated", "未応答（エスカレーション済み）"));
    }
    var who = el("p", "alert-live__responses");
    if (a.coming.length) {
      who.textContent = (a.own ? "向かっています：" : "") +
        a.responses.map(function (r) { return r.name + "：" + r.label; }).join("／");
    } else {
      who.textContent = "まだ誰も応答していません";
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
    actions.appendChild(minimiseButton(key));
    card.appendChild(actions);
    return card;
  }

  function renderLong(s, key) {
    var item = el("div", "alert-live__item alert-live__item--long");
    item.dataset.key = key;
    var link = el("a", null, "長時間対応：相談 " + s.number + " が" + s.minutes + "分を超えました");
    link.href = s.url;
    item.appendChild(link);
    var actions = el("div", "alert-live__actions");
    actions.appendChild(minimiseButton(key));
    item.appendChild(actions);
    return item;
  }

  function render(data) {
    // An escalation is a new state: it shows again even if the alert was minimised.
    var items = data.alerts.map(function (a) {
      return { key: "a" + a.id + (a.escalated ? "e" : ""), node: function () { return renderAlert(a, data.responder, "a" + a.id + (a.escalated ? "e" : "")); }, alert: a };
    }).concat((data.long_sessions || []).map(function (s) {
      return { key: "l" + s.id, node: function () { return renderLong(s, "l" + s.id); } };
    }));
    var keys = items.map(function (i) { return i.key; });
    var fresh = known !== null && keys.filter(function (k) { return known.indexOf(k) < 0; });
    known = keys;
    var live = window.madoguchi && window.madoguchi.live;
    if (fresh && fresh.length && data.responder && live && live.beep) {
      var loud = fresh.some(function (k) { return /^a\d+e$/.test(k); });
      live.beep(loud ? 6 : 3, loud);
      live.notify("応援要請", loud ? "応援要請に誰も応答していません。" : "応援要請が届きました。");
    }
    var hidden = minimised();
    setMinimised(hidden.filter(function (k) { return keys.indexOf(k) >= 0; }));
    region.textContent = "";
    var folded = 0;
    items.forEach(function (i) {
      if (hidden.indexOf(i.key) >= 0) { folded += 1; return; }
      region.appendChild(i.node());
    });
    region.classList.toggle("is-active", region.childElementCount > 0);
    if (tray) {
      var alerts = data.alerts.length;
      var longs = (data.long_sessions || []).length;
      tray.hidden = items.length === 0;
      var parts = [];
      if (alerts) parts.push("応援要請 " + alerts + "件");
      if (longs) parts.push("長時間対応 " + longs + "件");
      trayButton.textContent = parts.join("・") + (folded ? "（最小化 " + folded + "件：表示する）" : "");
      trayButton.setAttribute("aria-expanded", folded ? "false" : "true");
      tray.classList.toggle("has-escalated", data.alerts.some(function (a) { return a.escalated; }));
    }
    since = Math.max(since, data.latest || 0);
  }

  if (trayButton) {
    trayButton.addEventListener("click", function () {
      setMinimised([]);
      poll().then(function () { region.scrollIntoView({ block: "start" }); });
    });
  }

  function poll() {
    return fetch(feed + "?since=" + since, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) render(data); })
      .catch(function () { /* network blip: the next event retries */ });
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

  // --- the help button ----------------------------------------------------------------------
  var form = document.getElementById("help-form");
  if (!form) return;

  // The button is fixed at the bottom right: a field being typed in never stays under it. When
  // one takes the focus or grows, the page scrolls it clear (the page has room below for this).
  function clearOfButton(e) {
    var field = e.target;
    if (!field || !field.matches || !field.matches("input, textarea, select") || form.contains(field)) return;
    var dock = form.getBoundingClientRect().top - 12;
    var rect = field.getBoundingClientRect();
    if (rect.bottom <= dock || rect.top >= window.innerHeight) return;
    var by = rect.bottom - dock;
    // A field taller than the room above the button: its top line goes near the top instead.
    by = Math.min(by, Math.max(rect.top - 80, 0));
    if (by > 0) window.scrollBy(0, by);
  }
  document.addEventListener("focusin", clearOfButton);
  document.addEventListener("input", clearOfButton);
  var select = document.getElementById("help-place");
  var status = document.getElementById("help-status");
  var local = store("localStorage");
  if (select && local) {
    var saved = null;
    try { saved = local.getItem(PLACE_KEY); } catch (e) { /* private mode */ }
    if (saved && select.querySelector('option[value="' + saved.replace(/[^a-z0-9]/g, "") + '"]')) select.value = saved;
    select.addEventListener("change", function () {
      try { local.setItem(PLACE_KEY, select.value); } catch (e) { /* private mode */ }
    });
  }
  var sending = false;
  function send() {
    if (sending) return;
    sending = true;
    status.textContent = "送信しています…";
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, "Accept": "application/json" },
      body: new FormData(form),
    })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (answer) {
        status.textContent = answer.ok
          ? "応援を要請しました：" + answer.body.place
          : (answer.body.error || "送信できませんでした。もう一度押してください。");
        poll();
        // The alert itself stays in the stack above; the note beside the button goes.
        clearTimeout(send.clear);
        send.clear = setTimeout(function () { status.textContent = ""; }, 15000);
      })
      .catch(function () { status.textContent = "送信できませんでした。もう一度押してください。"; })
      .then(function () { sending = false; });
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); send(); });
  document.addEventListener("keydown", function (e) {
    if (e.altKey && !e.ctrlKey && !e.metaKey && (e.key === "h" || e.key === "H" || e.code === "KeyH")) {
      e.preventDefault();
      send();
    }
  });
})();
