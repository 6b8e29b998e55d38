// Forms marked "once": after the first submit the button is disabled and says it is working,
// so a driver on a slow network sees progress and cannot send it twice (the server is safe anyway).
(function () {
  "use strict";
  document.querySelectorAll("form.once").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent) { event.preventDefault(); return; }
      form.dataset.sent = "1";
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.setAttribute("aria-disabled", "true");
        if (form.dataset.busy) { button.textContent = form.dataset.busy; }
      });
    });
  });
})();
