/* The lobby display: refresh the called and waiting numbers without reloading the page. */
(function () {
  "use strict";
  var body = document.body;
  var feed = body.dataset.feed;
  var every = Math.max(2, parseInt(body.dataset.refresh || "5", 10)) * 1000;

  function render(data) {
    var called = document.getElementById("called");
    called.textContent = "";
    if (!data.called.length) {
      var none = document.createElement("li");
      none.className = "display__empty";
      none.textContent = "ただいまお呼び出し中の番号はありません";
      called.appendChild(none);
    }
    data.called.forEach(function (item) {
      var li = document.createElement("li");
      li.className = "display__item";
      var n = document.createElement("span");
      n.className = "display__number"; n.textContent = item.number;
      var r = document.createElement("span");
      r.className = "display__room"; r.textContent = "相談室" + item.room;
      var en = document.createElement("small");
      en.lang = "en"; en.textContent = "Room " + item.room;
      r.appendChild(en);
      li.appendChild(n); li.appendChild(r);
      called.appendChild(li);
    });
    var waiting = document.getElementById("waiting");
    waiting.textContent = "";
    (data.waiting.length ? data.waiting : ["—"]).forEach(function (n) {
      var s = document.createElement("span"); s.textContent = n; waiting.appendChild(s);
    });
  }

  function refresh() {
    return fetch(feed, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) render(data); })
      .catch(function () {});
  }

  // A call arrives at once through the display's own public stream (/display/live: calls
  // only, number and room); the board is then read again. Without a stream (a proxy that breaks
  // Server-Sent Events) the board is polled as before. The page needs no session, so it keeps
  // working for hours; the stream ends every few minutes and the browser resumes from its
  // cursor (Last-Event-ID), so no call is missed.
  var liveUrl = body.dataset.liveUrl;
  var failures = 0;
  var polling = false;
  var pending = null;
  body.setAttribute("data-display-state", "connecting");

  function soon() {
    clearTimeout(pending);
    pending = setTimeout(refresh, 50);
  }

  function poll() {
    polling = true;
    body.setAttribute("data-display-state", "polling");
    refresh().finally(function () { setTimeout(poll, every); });
  }

  function connect() {
    if (!liveUrl || !window.EventSource || failures >= 4) { poll(); return; }
    var cursor = body.dataset.liveCursor || "";
    var source = new EventSource(liveUrl + (cursor ? "?after=" + cursor : ""));
    source.onopen = function () {
      if (failures > 0) { refresh(); } // calls made while away: the board says them
      failures = 0;
      body.setAttribute("data-display-state", "open");
    };
    source.onmessage = function (message) {
      if (message.lastEventId) { body.dataset.liveCursor = message.lastEventId; }
      soon();
    };
    source.onerror = function () {
      body.setAttribute("data-display-state", "lost");
      failures += 1;
      // The browser retries by itself; when the stream keeps failing (a proxy that refuses
      // it), the screen goes back to reading its board every few seconds.
      if (failures >= 4) { source.close(); poll(); return; }
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, Math.min(1000 * failures, 5000));
      }
    };
  }
  connect();
  // A slow safety net: the board is read again now and then even with the stream (waiting
  // numbers come from reception, which the stream does not carry).
  setInterval(function () { if (!polling) { refresh(); } }, every * 2);
})();
