/* A new consumer or fraud alert (注意喚起) was approved: every staff page says so at once,
   through the kernel's live channel (live.js), with a link to the alert. No polling. */
(function () {
  "use strict";
  var live = window.madoguchi && window.madoguchi.live;
  if (!live || !live.on) { return; }
  live.on("consumer_alert.published", function (payload) {
    if (!payload || !payload.alert_id) { return; }
    var box = document.getElementById("consumer-alert-live");
    if (!box) {
      box = document.createElement("div");
      box.id = "consumer-alert-live";
      box.className = "notice notice--warning";
      box.setAttribute("role", "status");
      var main = document.querySelector("main") || document.body;
      main.insertBefore(box, main.firstChild);
    }
    box.textContent = "";
    var text = document.createTextNode("新しい注意喚起が公開されました：");
    var link = document.createElement("a");
    link.href = "/staff/alerts/" + encodeURIComponent(String(payload.alert_id));
    link.textContent = String(payload.title || "注意喚起");
    box.appendChild(text);
    box.appendChild(link);
  });
})();
