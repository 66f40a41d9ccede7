// The only script: reload the page every data-refresh seconds while it is visible and nobody is
// typing. Everything else works without it.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-refresh"), 10);
  if (!(seconds > 0)) { return; }
  setInterval(function () {
    var active = document.activeElement;
    var busy = active && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(active.tagName);
    if (document.visibilityState === "visible" && !busy) {
      // Without the one-time notice (?done=...) of the action that led here: it is old news now.
      var url = new URL(window.location.href);
      url.searchParams.delete("done");
      window.location.replace(url.toString());
    }
  }, seconds * 1000);
}());
