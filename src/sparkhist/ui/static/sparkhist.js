// sparkhist web UI: the little JavaScript it has. Pages work without it; with it, dates
// are shown in the browser's time zone (the server writes them in UTC).
(function () {
  "use strict";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function local(date) {
    return date.getFullYear() + "/" + pad(date.getMonth() + 1) + "/" + pad(date.getDate()) + " " +
      pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }
  function zoneName() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var times = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var when = new Date(times[i].getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        times[i].title = times[i].textContent + " UTC";
        times[i].textContent = local(when);
      }
    }
    var zones = document.querySelectorAll("[data-time-zone]");
    for (var j = 0; j < zones.length; j++) { zones[j].textContent = zoneName(); }
    // The page-size lists do not submit on change: arrow keys change a closed list's value,
    // and a keyboard user would be sent away on the first press. "Apply" submits.
  });
})();
