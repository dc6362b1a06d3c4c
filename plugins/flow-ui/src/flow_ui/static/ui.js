// Flow UI: live refresh of pages about something still running, and log search. No framework.
(function () {
  "use strict";
  var POLL_MS = 2000;

  function applySearch() {
    var box = document.querySelector(".log-search");
    if (!box) return;
    var needle = box.value.toLowerCase();
    document.querySelectorAll(".log .line").forEach(function (line) {
      var text = line.textContent;
      var at = needle ? text.toLowerCase().indexOf(needle) : -1;
      line.classList.toggle("hidden", needle !== "" && at < 0);
      if (at >= 0) {
        line.replaceChildren(text.slice(0, at), Object.assign(document.createElement("mark"),
          { textContent: text.slice(at, at + needle.length) }), text.slice(at + needle.length));
      } else if (line.children.length) {
        line.textContent = text;
      }
    });
  }

  function bindSearch() {
    var box = document.querySelector(".log-search");
    if (box) box.addEventListener("input", applySearch);
  }

  function poll() {
    if (document.body.dataset.live !== "1") return;
    fetch(location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (text === null) return;
        var fresh = new DOMParser().parseFromString(text, "text/html");
        var search = document.querySelector(".log-search");
        var needle = search ? search.value : "";
        document.querySelector("main").replaceWith(fresh.querySelector("main"));
        document.body.dataset.live = fresh.body.dataset.live;
        var box = document.querySelector(".log-search");
        if (box) { box.value = needle; bindSearch(); applySearch(); }
      })
      .catch(function () { /* the server went away: try again at the next tick */ })
      .finally(function () { setTimeout(poll, POLL_MS); });
  }

  bindSearch();
  setTimeout(poll, POLL_MS);
})();
