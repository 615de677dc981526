/* Slot picker enhancement: moves between weeks and days without a page reload.
   Without this script every link still works as a normal page load. */
(function () {
  "use strict";
  var picker = document.querySelector("[data-picker]");
  var status = document.querySelector("[data-picker-status]");
  if (!picker || !window.fetch || !window.DOMParser || !history.pushState) return;

  function swap(url, push) {
    picker.setAttribute("aria-busy", "true");
    return fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("[data-picker]");
        if (!fresh) throw new Error("no picker in response");
        picker.innerHTML = fresh.innerHTML;
        picker.removeAttribute("aria-busy");
        if (push) history.pushState({ picker: true }, "", url);
        var heading = picker.querySelector("#times-heading");
        var times = picker.querySelector("#times");
        if (status && heading) {
          var count = picker.querySelectorAll(".time").length;
          status.textContent = heading.textContent + ": " + count + " shown.";
        }
        if (times) times.focus();
      })
      .catch(function () {
        window.location.href = url; // fall back to an ordinary page load
      });
  }

  picker.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-picker-link]");
    if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    swap(link.href, true);
  });

  window.addEventListener("popstate", function () {
    swap(window.location.href, false);
  });
})();
