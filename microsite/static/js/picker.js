/* Slot picker enhancement: moves between weeks, days and clinicians without a page reload.
   Without this script every link and the clinician form still work as normal page loads. */
(function () {
  "use strict";
  var picker = document.querySelector("[data-picker]");
  var status = document.querySelector("[data-picker-status]");
  if (!picker || !window.fetch || !window.DOMParser || !history.pushState) return;

  // Where focus goes after a swap: the times after choosing a day, else the week's heading
  // (the control that was pressed is replaced, so focus must land somewhere meaningful).
  function focusAfterSwap(target) {
    var element = picker.querySelector(target === "times" ? "#times" : "#days-heading");
    if (!element) return;
    if (!element.hasAttribute("tabindex")) element.setAttribute("tabindex", "-1");
    element.focus({ preventScroll: true });
  }

  function swap(url, push, focusTarget) {
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
        if (status && heading) {
          var count = picker.querySelectorAll(".time").length;
          var week = picker.querySelector("#days-heading");
          status.textContent = (week ? week.textContent + ". " : "") + heading.textContent +
            (count ? ": " + count + " shown." : ".");
        }
        if (focusTarget) focusAfterSwap(focusTarget);
      })
      .catch(function () {
        window.location.href = url; // fall back to an ordinary page load
      });
  }

  picker.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-picker-link]");
    if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    swap(link.href, true, link.classList.contains("date") ? "times" : "days");
  });

  picker.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-picker-form]");
    if (!form) return;
    event.preventDefault();
    var query = new URLSearchParams(new FormData(form)).toString();
    swap(form.action + (form.action.indexOf("?") < 0 ? "?" : "&") + query, true, "days");
  });

  window.addEventListener("popstate", function () {
    swap(window.location.href, false, null);
  });
})();
