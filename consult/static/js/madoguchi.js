/* Every page: running timers, earlier-case matches while a consultant types, and one send per
   press of a form's button. */
(function () {
  "use strict";

  function pad(n) { return String(n).padStart(2, "0"); }

  function startTimers() {
    document.querySelectorAll(".timer[data-started]").forEach(function (el) {
      var started = new Date(el.dataset.started).getTime();
      function tick() {
        var s = Math.max(0, Math.floor((Date.now() - started) / 1000));
        var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
        el.textContent = (h ? h + "時間" : "") + m + "分" + pad(s % 60) + "秒（計測中）";
      }
      tick();
      setInterval(tick, 1000);
    });
  }

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  function renderMatches(box, form, data) {
    box.textContent = "";
    if (!data.matches || !data.matches.length) return;
    var heading = document.createElement("p");
    heading.className = "small";
    heading.textContent = "過去に相談のある方が見つかりました：";
    box.appendChild(heading);
    data.matches.forEach(function (m) {
      var card = document.createElement("div");
      card.className = "match";
      var title = document.createElement("strong");
      title.textContent = m.name + (m.kana ? "（" + m.kana + "）" : "") + " — " + m.reason;
      card.appendChild(title);
      var score = document.createElement("span");
      score.className = "badge match__score";
      score.textContent = "一致度 " + m.score + (m.strong ? "（同一人物の可能性が高い）" : "");
      card.appendChild(score);
      var list = document.createElement("ul");
      m.tickets.forEach(function (t) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = t.url; a.target = "_blank"; a.rel = "noopener";
        a.textContent = t.number + " " + t.subject + "（" + t.status + "）";
        li.appendChild(a);
        list.appendChild(li);
      });
      card.appendChild(list);
      var hidden = form.querySelector("input[name=citizen_id]");
      var linkUrl = form.dataset.linkUrl;
      if (hidden || linkUrl) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "button button--secondary button--small";
        button.textContent = "この方として受け付ける";
        button.addEventListener("click", function () {
          if (hidden) {
            hidden.value = m.id;
            box.textContent = "";
            var chosen = document.createElement("p");
            chosen.className = "notice notice--success";
            chosen.textContent = m.name + " さんとして受け付けます。";
            box.appendChild(chosen);
          } else {
            var f = document.createElement("form");
            f.method = "post"; f.action = linkUrl;
            [["csrf_token", csrfToken(form)], ["citizen_id", m.id]].forEach(function (kv) {
              var i = document.createElement("input");
              i.type = "hidden"; i.name = kv[0]; i.value = kv[1]; f.appendChild(i);
            });
            document.body.appendChild(f);
            f.submit();
          }
        });
        card.appendChild(button);
      }
      box.appendChild(card);
    });
    var hiddenId = form.querySelector("input[name=citizen_id]");
    if (hiddenId) {
      // The other answer to "is this the same person?": the server asks again otherwise.
      var fresh = document.createElement("button");
      fresh.type = "button";
      fresh.className = "button button--secondary button--small";
      fresh.textContent = "新しい相談者として受け付ける";
      fresh.addEventListener("click", function () {
        hiddenId.value = "";
        var choice = form.querySelector("input[type=hidden][name=citizen_choice]");
        if (!choice) {
          choice = document.createElement("input");
          choice.type = "hidden"; choice.name = "citizen_choice";
          form.appendChild(choice);
        }
        choice.value = "new";
        box.textContent = "";
        var chosen = document.createElement("p");
        chosen.className = "notice notice--success";
        chosen.textContent = "新しい相談者として受け付けます。";
        box.appendChild(chosen);
      });
      box.appendChild(fresh);
    }
  }

  function watchMatches() {
    document.querySelectorAll("form.citizen-form[data-match-url]").forEach(function (form) {
      var box = form.querySelector(".matches");
      if (!box) return;
      var timer = null;
      function lookup() {
        var body = new FormData();
        body.append("csrf_token", csrfToken(form));
        ["name", "kana", "phone", "email", "birth_date"].forEach(function (n) {
          var f = form.querySelector("[name=" + n + "]");
          if (f && f.value) body.append(n, f.value);
        });
        fetch(form.dataset.matchUrl, { method: "POST", body: body, credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : { matches: [] }; })
          .then(function (data) { renderMatches(box, form, data); })
          .catch(function () {});
      }
      ["name", "kana", "phone", "email", "birth_date"].forEach(function (n) {
        var f = form.querySelector("[name=" + n + "]");
        if (!f) return;
        f.addEventListener(n === "birth_date" ? "change" : "input", function () {
          clearTimeout(timer);
          var value = f.value.replace(/\s/g, "");
          if ((n === "phone" && value.length >= 10) || (n !== "phone" && value.length >= 2)) {
            timer = setTimeout(lookup, 400);
          }
        });
      });
    });
  }

  // A second press of a form's button while the first is on its way (a double click, an
  // impatient second tap) is dropped: one reply, one ticket, one booking. Only forms that
  // leave the page are held (POST, same window, not handled by a script); a held form is
  // freed after HOLD_MS, or when the page comes back from the back-forward cache.
  var HOLD_MS = 15000;
  function holdSubmits() {
    window.addEventListener("submit", function (event) {
      var form = event.target;
      if (!(form instanceof HTMLFormElement)) return;
      if ((form.getAttribute("method") || "get").toLowerCase() !== "post" || form.target) return;
      if (form.dataset.sending === "1") { event.preventDefault(); return; }
      if (event.defaultPrevented) return;
      form.dataset.sending = "1";
      setTimeout(function () { delete form.dataset.sending; }, HOLD_MS);
    });
    window.addEventListener("pageshow", function (event) {
      if (!event.persisted) return;
      document.querySelectorAll("form[data-sending]").forEach(function (form) {
        delete form.dataset.sending;
      });
    });
  }
  holdSubmits();

  document.addEventListener("DOMContentLoaded", function () {
    startTimers();
    watchMatches();
  });
})();
