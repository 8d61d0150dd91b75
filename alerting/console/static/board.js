// The live board: the server sends the viewer's board again over Server-Sent Events whenever
// an alert changes (in any alarm-service process); the page swaps it in without reloading.
(function () {
  "use strict";
  var board = document.getElementById("board");
  var status = document.getElementById("live-status");
  var total = document.getElementById("total");
  if (!board || !window.EventSource) { return; }
  var version = board.getAttribute("data-version") || "-1";
  var source = new EventSource("/console/events?since=" + encodeURIComponent(version));
  function say(text) { if (status) { status.textContent = text; } }
  source.addEventListener("open", function () { say("Live: updates appear by themselves."); });
  source.addEventListener("error", function () { say("Live updates interrupted; reconnecting…"); });
  source.addEventListener("board", function (event) {
    var data = JSON.parse(event.data);
    board.innerHTML = data.html;
    board.setAttribute("data-version", String(data.version));
    if (total) { total.textContent = String(data.total); }
    say("Live: updated at " + new Date().toLocaleTimeString() + ".");
  });
  source.addEventListener("logout", function () {
    source.close();
    window.location.assign("/console/login");
  });
  window.addEventListener("pagehide", function () { source.close(); });
}());
