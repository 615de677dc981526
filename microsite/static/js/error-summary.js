/* After a failed submit, move focus to the error summary so keyboard and screen-reader users
   start from what went wrong. Without this script the summary is still first in the content. */
(function () {
  "use strict";
  var summary = document.querySelector("[data-error-summary]");
  if (summary) summary.focus();
})();
