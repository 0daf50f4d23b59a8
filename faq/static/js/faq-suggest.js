// Ticket page: while the consultant types the subject or a note, show similar FAQ entries and
// past closed cases beside it. Loaded as a file (the CSP forbids inline scripts).
(function () {
  "use strict";
  var panel = document.querySelector("[data-faq-suggest]");
  if (!panel) { return; }
  var box = panel.querySelector(".faq-suggestions");
  var url = panel.getAttribute("data-faq-suggest");
  var ticket = panel.getAttribute("data-ticket") || "";
  var timer = null;
  var last = "";

  function list(title, items, label) {
    if (!items.length) { return null; }
    var wrap = document.createElement("div");
    var heading = document.createElement("h3");
    heading.textContent = title;
    wrap.appendChild(heading);
    var ul = document.createElement("ul");
    items.forEach(function (item) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = item.url;
      a.textContent = label(item);
      li.appendChild(a);
      ul.appendChild(li);
    });
    wrap.appendChild(ul);
    return wrap;
  }

  function show(data) {
    box.textContent = "";
    var faq = list("似たFAQ", data.entries, function (e) { return e.question; });
    var cases = list("過去の相談", data.tickets, function (t) { return t.number + " " + t.subject; });
    if (!faq && !cases) {
      var p = document.createElement("p");
      p.className = "field__hint";
      p.textContent = "似たFAQは見つかりませんでした。";
      box.appendChild(p);
      return;
    }
    if (faq) { box.appendChild(faq); }
    if (cases) { box.appendChild(cases); }
  }

  function lookup(text) {
    text = text.trim();
    if (text.length < 2 || text === last) { return; }
    last = text;
    var query = url + "?q=" + encodeURIComponent(text.slice(0, 200)) + "&ticket=" + encodeURIComponent(ticket);
    fetch(query, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { show(data); } })
      .catch(function () { /* suggestions are a help, never a blocker */ });
  }

  function watch(field) {
    field.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { lookup(field.value); }, 300);
    });
  }

  document.querySelectorAll("textarea[name=body], input[name=subject]").forEach(watch);
  var subject = document.querySelector("h1");
  if (subject) { lookup(subject.textContent); }
})();
