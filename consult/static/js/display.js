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

  function poll() {
    fetch(feed, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) render(data); })
      .catch(function () {})
      .finally(function () { setTimeout(poll, every); });
  }
  setTimeout(poll, every);
})();
