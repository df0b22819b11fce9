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
    // Changing the page size submits its form (the button stays for keyboards without scripts).
    var autos = document.querySelectorAll("select[data-autosubmit]");
    for (var k = 0; k < autos.length; k++) {
      autos[k].addEventListener("change", function (event) { event.target.form.submit(); });
    }
  });
})();
