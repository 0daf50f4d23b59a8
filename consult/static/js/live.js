/* The live channel of a staff page: one EventSource (GET /live/stream) carrying every event
   this person may receive. Features listen with madoguchi.live.on(kind, fn); they never open
   their own polls. The cursor (the last event's id) is kept in sessionStorage: a reconnect
   resumes after it, so nothing is lost and nothing is shown twice. Where a proxy breaks
   Server-Sent Events, the same endpoint is polled with ?poll=1. */
(function () {
  "use strict";

  var madoguchi = window.madoguchi = window.madoguchi || {};
  var listeners = {};
  var live = madoguchi.live = madoguchi.live || {};
  var queued = live._queued || [];
  live.on = function (kind, fn) { (listeners[kind] = listeners[kind] || []).push(fn); };
  queued.forEach(function (pair) { live.on(pair[0], pair[1]); });

  var body = document.body;
  var url = body.getAttribute("data-live-url");
  if (!url) { return; }
  var KEY = "madoguchi.live.cursor";
  var alarmed = body.getAttribute("data-live-alarm") === "1";
  var pageCursor = parseInt(body.getAttribute("data-live-cursor") || "", 10);
  // The page's own cursor (read before its data) is right for a freshly rendered page; the
  // stored one serves a page restored from the back-forward cache.
  var cursor = isNaN(pageCursor) ? (parseInt(sessionStorage.getItem(KEY) || "0", 10) || 0) : pageCursor;
  var source = null;
  var ended = false;
  var failures = 0;
  var polling = false;
  var lostTimer = null;

  // --- the state banner -------------------------------------------------------------------

  var banner = document.getElementById("live-status");
  function show(state) {
    live.state = state;
    body.setAttribute("data-live-state", state);
    if (!banner) { return; }
    banner.textContent = "";
    banner.className = "live-status live-status--" + state;
    if (state === "lost") {
      banner.appendChild(document.createTextNode("接続が切れています。再接続しています…"));
      banner.hidden = false;
    } else if (state === "ended") {
      banner.appendChild(document.createTextNode("ログインの有効期限が切れました。再度ログインしてください。 "));
      var link = document.createElement("a");
      link.href = body.getAttribute("data-login-url") || "/login";
      link.textContent = "ログイン画面へ";
      banner.appendChild(link);
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  // --- sound and notification (no audio file: Web Audio) -----------------------------------

  var audio = null;
  // loud: an escalated alert (no one answered): a harsher, louder two-tone, more times.
  live.beep = function (times, loud) {
    live.lastBeep = { times: times || 2, loud: !!loud, at: Date.now() };
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) { return; }
      audio = audio || new Context();
      var count = times || 2;
      for (var i = 0; i < count; i += 1) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.type = loud ? "square" : "sine";
        osc.frequency.value = loud ? (i % 2 ? 660 : 988) : 880;
        gain.gain.value = loud ? 0.6 : 0.2;
        osc.connect(gain);
        gain.connect(audio.destination);
        var start = audio.currentTime + i * 0.35;
        osc.start(start);
        osc.stop(start + (loud ? 0.3 : 0.2));
      }
    } catch (e) { /* a browser that refuses sound before a click: the banner still shows */ }
  };
  live.notify = function (title, text) {
    if (!("Notification" in window) || Notification.permission !== "granted") { return; }
    try { new Notification(title, { body: text, tag: "madoguchi-" + title }); } catch (e) { /* ignore */ }
  };
  // Browsers allow sound only after a gesture on the page: prepare it at the first click.
  document.addEventListener("click", function () {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (Context && !audio) { try { audio = new Context(); } catch (e) { /* ignore */ } }
  }, { once: true });

  // --- delivery ----------------------------------------------------------------------------

  function deliver(event) {
    if (event.id <= cursor) { return; } // already shown (a replay after reconnecting)
    cursor = event.id;
    try { sessionStorage.setItem(KEY, String(cursor)); } catch (e) { /* private mode */ }
    var names = [event.kind, event.kind.split(".")[0], "*"];
    names.filter(function (name, index) { return names.indexOf(name) === index; })
      .forEach(function (name) {
        (listeners[name] || []).forEach(function (fn) {
          try { fn(event.payload, event); } catch (e) { if (window.console) { console.error(e); } }
        });
      });
  }

  function end() {
    if (ended) { return; }
    ended = true;
    stopPush();
    clearTimeout(pollTimer);
    show("ended");
    if (alarmed) { live.beep(3); }
  }

  function lost() {
    if (lostTimer || ended) { return; }
    // A normal reconnect takes a moment: say so only when it lasts.
    lostTimer = setTimeout(function () { if (!ended) { show("lost"); } }, 1500);
  }

  function back() {
    clearTimeout(lostTimer);
    lostTimer = null;
    if (!ended) { show("open"); }
  }

  function streamUrl(extra) {
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "after=" + cursor + (extra || "");
  }

  // Push, with a proof that it works: the stream's first event (`hello`) must arrive within
  // HELLO_MS. A proxy that buffers the stream, or one that never answers, fails that test, and
  // so do repeated errors: the page then polls, and tries push again every RETRY_MS.
  var timing = window.madoguchiLiveTiming || {};
  var HELLO_MS = timing.helloMs || 5000;
  var RETRY_MS = timing.retryMs || 60000;
  var helloTimer = null;
  var pollTimer = null;
  var retryTimer = null;

  function stopPush() {
    clearTimeout(helloTimer);
    if (source) { source.close(); source = null; }
  }

  function fallBack() {
    stopPush();
    failures = 0;
    if (!polling) {
      polling = true;
      poll();
    }
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () { if (!ended) { connect(); } }, RETRY_MS);
  }

  function connect() {
    if (ended) { return; }
    if (!window.EventSource) { fallBack(); return; }
    stopPush();
    var mine = source = new EventSource(streamUrl());
    helloTimer = setTimeout(function () { if (source === mine) { fallBack(); } }, HELLO_MS);
    mine.addEventListener("hello", function () {
      if (source !== mine) { return; }
      clearTimeout(helloTimer);
      failures = 0;
      if (polling) { polling = false; clearTimeout(pollTimer); } // push works again
      back();
    });
    mine.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      deliver(data);
    };
    mine.addEventListener("ended", end);
    mine.onerror = function () {
      if (source !== mine) { return; }
      if (!polling) { lost(); }
      failures += 1;
      if (failures >= 3) { fallBack(); return; }
      clearTimeout(helloTimer);
      if (mine.readyState === EventSource.CLOSED) {
        // The browser gave up (an error page, a proxy): try again ourselves, from our cursor.
        source = null;
        setTimeout(function () { if (!source && !ended) { connect(); } }, Math.min(1000 * failures, 5000));
      } else {
        // The browser reconnects by itself (Last-Event-ID: nothing lost, nothing twice); that
        // stream must say hello too.
        helloTimer = setTimeout(function () { if (source === mine) { fallBack(); } }, HELLO_MS + 2000);
      }
    };
  }

  // The fallback: the same endpoint, as JSON, every few seconds, from the same cursor.
  function poll() {
    if (ended || !polling) { return; }
    fetch(streamUrl("&poll=1"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (data) {
        if (data.ended) { end(); return; }
        data.events.forEach(deliver);
        if (data.cursor > cursor) {
          cursor = data.cursor;
          try { sessionStorage.setItem(KEY, String(cursor)); } catch (e) { /* private mode */ }
        }
        back();
      })
      .catch(lost)
      .then(function () {
        if (!ended && polling) { clearTimeout(pollTimer); pollTimer = setTimeout(poll, 3000); }
      });
  }
  live.polling = function () { return polling; };

  // A page restored from the back-forward cache has no connection: open one again.
  window.addEventListener("pageshow", function (e) { if (e.persisted && !source && !polling) { connect(); } });
  window.addEventListener("pagehide", function () { stopPush(); });

  show("connecting");
  connect();

  // --- helpers features share ---------------------------------------------------------------

  /* Fetch this page again and bring rows keyed by `key` up to date in place: changed rows get
     their new cells, new rows appear at the top with a quiet highlight, rows no longer listed
     are dimmed (never removed under the pointer). Returns the new rows' elements. */
  live.refreshRows = function (tableSelector, key) {
    return fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return []; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var table = document.querySelector(tableSelector);
        var freshTable = fresh.querySelector(tableSelector);
        if (!freshTable) {
          // Nothing is listed any more: what is shown stays, dimmed.
          if (table) {
            Array.prototype.forEach.call(table.querySelectorAll("tr[" + key + "]"), function (row) {
              row.classList.add("is-stale");
            });
          }
          return [];
        }
        if (!table) {
          // The page said "nothing here" until now: take the whole list.
          var empty = document.querySelector("[data-live-empty]");
          if (!empty) { return []; }
          empty.replaceWith(document.importNode(freshTable, true));
          var all = Array.prototype.slice.call(document.querySelectorAll(tableSelector + " tr[" + key + "]"));
          all.forEach(function (row) { row.classList.add("is-fresh"); });
          return all;
        }
        var tbody = table.querySelector("tbody");
        var seen = {};
        var added = [];
        var rows = freshTable.querySelectorAll("tbody tr[" + key + "]");
        for (var i = rows.length - 1; i >= 0; i -= 1) {
          var row = rows[i];
          var id = row.getAttribute(key);
          seen[id] = true;
          var mine = tbody.querySelector("tr[" + key + "='" + id + "']");
          if (mine) {
            if (mine.innerHTML !== row.innerHTML) {
              var wasFresh = mine.classList.contains("is-fresh");
              mine.innerHTML = row.innerHTML;
              mine.className = row.className;
              if (wasFresh) { mine.classList.add("is-fresh"); }
            }
            mine.classList.remove("is-stale");
          } else {
            var node = document.importNode(row, true);
            node.classList.add("is-fresh");
            tbody.insertBefore(node, tbody.firstChild);
            added.push(node);
          }
        }
        Array.prototype.forEach.call(tbody.querySelectorAll("tr[" + key + "]"), function (row) {
          if (!seen[row.getAttribute(key)]) { row.classList.add("is-stale"); }
        });
        return added;
      });
  };
})();
