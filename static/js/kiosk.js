// FinePay kiosk: one page whose screens the server renders; this script swaps them in,
// drives the on-screen keyboards, the reader polling, the receipt and the idle reset.
// Nothing personal is ever written to cookies, localStorage or sessionStorage, and the
// page never navigates except with location.replace, so history never grows.
(function () {
  "use strict";

  var body = document.body;
  var screenEl = document.getElementById("screen");
  var startOverButton = document.getElementById("start-over");
  var largeTextButton = document.getElementById("large-text");
  var promptEl = document.getElementById("idle-prompt");
  var countdownEl = document.getElementById("idle-countdown");

  function seconds(name) { return parseFloat(body.getAttribute(name)) * 1000; }

  var config = {
    api: body.getAttribute("data-api"),
    home: body.getAttribute("data-home"),
    idle: seconds("data-idle-seconds"),
    prompt: seconds("data-prompt-seconds"),
    heartbeat: seconds("data-heartbeat-seconds"),
    receipt: seconds("data-receipt-seconds"),
    retry: seconds("data-retry-seconds"),
    poll: seconds("data-poll-seconds"),
    // The page's language (zh_CN, en); chosen only when the driver picked one for this visit.
    locale: body.getAttribute("data-locale"),
    chosenLocale: body.getAttribute("data-chosen-locale")
  };

  var state = {
    token: null, // the visit's session token: in this page's memory only
    busy: false,
    lastInput: Date.now(),
    promptShownAt: null,
    resetting: false,
    timers: []
  };

  // --- talking to FinePay -------------------------------------------------------

  function request(method, path, payload, timeoutMs) {
    var headers = { "Accept": "application/json" };
    // Every screen in the language of this page (the visit's choice, else the kiosk's default).
    if (config.locale) { headers["Accept-Language"] = config.locale.replace("_", "-"); }
    var options = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(payload || {});
    }
    if (state.token) { headers["X-Kiosk-Session"] = state.token; }
    var controller = new AbortController();
    options.signal = controller.signal;
    var timer = window.setTimeout(function () { controller.abort(); }, timeoutMs || 20000);
    return window.fetch(config.api + path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        window.clearTimeout(timer);
        return { status: response.status, data: data || {} };
      });
    }, function () {
      window.clearTimeout(timer);
      return { status: 0, data: { code: "offline" } };
    });
  }

  function setBusy(busy) {
    state.busy = busy;
    body.classList.toggle("is-busy", busy);
  }

  // One step of the flow: ignored while another is under way (a double tap is one step).
  function go(method, path, payload) {
    if (state.busy || state.resetting) { return; }
    setBusy(true);
    request(method, path, payload).then(function (result) {
      setBusy(false);
      handle(result, { method: method, path: path, payload: payload });
    });
  }

  function failureKind(code) {
    if (code === "reader_unavailable") { return "reader"; }
    if (code && code.indexOf("gateway") === 0) { return "gateway"; }
    return "service";
  }

  function firstMessage(errors) {
    if (typeof errors === "string") { return errors; }
    if (errors && typeof errors === "object") {
      var keys = Object.keys(errors);
      for (var i = 0; i < keys.length; i += 1) {
        var found = firstMessage(errors[keys[i]]);
        if (found) { return found; }
      }
    }
    return null;
  }

  function handle(result, call) {
    var status = result.status;
    var data = result.data;
    if (status >= 200 && status < 300) {
      if (data.session) { state.token = data.session; }
      if (data.html) { show(data.screen, data.html); }
      return true;
    }
    if (status === 401 || status === 403) { leave(); return false; }
    if (status === 409 && data.code === "session_ended") { reset("failure"); return false; }
    if (status === 0 || status >= 500) { fail(failureKind(data.code), data.message, call); return false; }
    if (status === 429 && data.code === "challenge_required" && data.challenge && call) {
      solveAndRetry(data, call);
      return false;
    }
    var message = (status === 422 && firstMessage(data.errors)) || data.message;
    if (!showError(message)) { fail("service", data.message, call); }
    return false;
  }

  // Too many wrong codes were tried for this plate: the kiosk does the proof-of-work check
  // (challenge.js), saying so on screen, then sends the same step again with the solution.
  function solveAndRetry(data, call) {
    var box = screenEl.querySelector("[data-role=checking]");
    // A solution refused in its turn is not chased round again: say so and stop.
    if (!box || !window.FinePayChallenge || (call.payload && call.payload.altcha)) {
      showError(box ? box.getAttribute("data-failed") : data.message);
      return;
    }
    setBusy(true);
    box.textContent = data.message + " " + box.getAttribute("data-checking");
    window.FinePayChallenge.solve(data.challenge).then(function (solution) {
      setBusy(false);
      box.textContent = "";
      var payload = Object.assign({}, call.payload, { altcha: solution });
      go(call.method, call.path, payload);
    }, function () {
      setBusy(false);
      box.textContent = "";
      showError(box.getAttribute("data-failed"));
    });
  }

  // --- screens --------------------------------------------------------------------

  function clearTimers() {
    state.timers.forEach(function (id) { window.clearInterval(id); window.clearTimeout(id); });
    state.timers = [];
  }

  function currentScreen() { return screenEl.getAttribute("data-current"); }

  function show(name, html) {
    clearTimers();
    screenEl.innerHTML = html; // rendered and escaped by the server
    screenEl.setAttribute("data-current", name);
    startOverButton.hidden = name === "welcome";
    window.scrollTo(0, 0);
    var heading = screenEl.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    var init = screens[name];
    if (init) { init(screenEl.firstElementChild); }
  }

  function showNode(name, node) {
    clearTimers();
    screenEl.replaceChildren(node);
    screenEl.setAttribute("data-current", name);
  }

  function showError(message) {
    var box = screenEl.querySelector("[data-role=error]");
    if (!box || !message) { return false; }
    box.textContent = message;
    box.hidden = false;
    return true;
  }

  function clearError() {
    var box = screenEl.querySelector("[data-role=error]");
    if (box) { box.hidden = true; box.textContent = ""; }
  }

  // FinePay, the card processor or the reader is unreachable: a calm screen that
  // keeps retrying the step that failed, and carries on from there when it works.
  function fail(kind, message, call) {
    var node = document.getElementById("failure-template").content.cloneNode(true);
    node.querySelectorAll("[data-kind]").forEach(function (el) {
      el.hidden = el.getAttribute("data-kind") !== kind;
    });
    if (message && kind === "gateway") { // e.g. "do not pay again" after a timeout
      var detail = node.querySelector("[data-role=detail]");
      detail.textContent = message;
      detail.hidden = false;
    }
    showNode("failure", node);
    startOverButton.hidden = !state.token;
    var pending = false;
    state.timers.push(window.setInterval(function () {
      if (pending || state.resetting) { return; }
      pending = true;
      request(call.method, call.path, call.payload).then(function (result) {
        pending = false;
        if (currentScreen() !== "failure") { return; }
        if (result.status >= 200 && result.status < 300 && !result.data.html) {
          reset("recovered");
        } else if (result.status === 0 || result.status >= 500) {
          return; // still down: keep waiting
        } else {
          handle(result, call);
        }
      });
    }, config.retry));
  }

  // A refused credential: reload, and the server explains (no kiosk screens).
  function leave() {
    clearTimers();
    screenEl.replaceChildren();
    window.location.replace(config.home);
  }

  // The full reset: the visit ends on the server (an unfinished payment is closed at its
  // gateway first), then the page is replaced, so nothing of this driver remains. If the
  // payment the page was waiting for turns out paid, the server answers with the receipt
  // instead: no reset over a paid order (the receipt ends the visit when it is done).
  function reset(reason) {
    if (state.resetting) { return; }
    var paying = currentScreen() === "reader" || currentScreen() === "scan";
    state.resetting = true;
    setLargeText(false); // the next driver starts with the kiosk's normal text
    clearTimers();
    promptEl.hidden = true;
    showNode("resetting", document.getElementById("resetting-template").content.cloneNode(true));
    startOverButton.hidden = true;
    var finish = function () {
      state.token = null;
      try {
        window.localStorage.clear();
        window.sessionStorage.clear();
      } catch (ignored) { /* storage may be disabled: then there is nothing in it */ }
      window.location.replace(config.home);
    };
    if (!state.token) { finish(); return; }
    request("POST", "/session/end", { reason: reason, paying: paying }, 10000).then(function (result) {
      if (result.status !== 200 || !result.data.html) { finish(); return; }
      state.resetting = false;
      state.lastInput = Date.now();
      state.promptShownAt = null;
      show(result.data.screen, result.data.html);
    }, finish);
  }

  // --- keyboards ------------------------------------------------------------------------

  var FIELDS = {
    plate: { max: 10, clean: function (value) {
      return value.normalize("NFKC").toUpperCase().replace(/[^A-Z0-9\u4e00-\u9fff]/g, "");
    } },
    vin: { max: 6, clean: function (value) {
      return value.normalize("NFKC").toUpperCase().replace(/[^A-HJ-NPR-Z0-9]/g, "");
    } },
    notice: { max: 32, clean: function (value) {
      return value.normalize("NFKC").toUpperCase().replace(/[^A-Z0-9]/g, "");
    } },
    payment: { max: 20, clean: function (value) {
      return value.normalize("NFKC").replace(/[^0-9]/g, "");
    } }
  };
  // The fewest characters each field needs before Next can be pressed.
  var MIN_LENGTH = { plate: 2, vin: 6, notice: 6, payment: 20 };

  function field() { return screenEl.querySelector("[data-field]"); }

  function setValue(input, value) {
    var rule = FIELDS[input.getAttribute("data-field")];
    input.value = rule.clean(value).slice(0, rule.max);
    clearError();
    updateEntry(input);
  }

  function updateEntry(input) {
    var kind = input.getAttribute("data-field");
    var next = screenEl.querySelector(".kbtn-next");
    if (next) { next.disabled = input.value.length < MIN_LENGTH[kind]; }
    if (kind === "plate") { showGrid(input.value.length > 0 ? "alnum" : "province"); }
  }

  function showGrid(name) {
    screenEl.querySelectorAll(".kkeyboard[data-grid]").forEach(function (grid) {
      grid.hidden = grid.getAttribute("data-grid") !== name;
    });
    screenEl.querySelectorAll("[data-action=show-grid]").forEach(function (button) {
      button.hidden = button.getAttribute("data-grid") === name;
    });
  }

  function initEntry(section) {
    var input = field();
    input.addEventListener("input", function (event) {
      if (!event.isComposing) { setValue(input, input.value); }
    });
    input.addEventListener("compositionend", function () { setValue(input, input.value); });
    updateEntry(input);
    input.focus({ preventScroll: true });
    input.setSelectionRange(input.value.length, input.value.length);
    return section;
  }

  // --- the violations list ---------------------------------------------------------------

  function formatMoney(minor, currency, locale) {
    var format;
    try {
      format = new Intl.NumberFormat(locale || "en", { style: "currency", currency: currency });
    } catch (ignored) {
      return String(minor);
    }
    var digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(minor / Math.pow(10, digits));
  }

  function selectedIds() {
    return Array.prototype.map.call(
      screenEl.querySelectorAll("[data-action=toggle][aria-checked=true]"),
      function (row) { return parseInt(row.getAttribute("data-id"), 10); }
    );
  }

  function updateTotals(section) {
    var rows = section.querySelectorAll("[data-action=toggle][aria-checked=true]");
    var total = 0;
    rows.forEach(function (row) { total += parseInt(row.getAttribute("data-amount"), 10); });
    var count = section.querySelector("[data-role=selected-count]");
    var sum = section.querySelector("[data-role=selected-total]");
    if (!count) { return; }
    if (rows.length === 0) {
      count.textContent = count.getAttribute("data-none");
      sum.textContent = "";
    } else {
      count.textContent = rows.length === 1 ? count.getAttribute("data-one")
        : count.getAttribute("data-many").replace("{n}", String(rows.length));
      sum.textContent = formatMoney(total, section.getAttribute("data-currency"), section.getAttribute("data-locale"));
    }
    var review = section.querySelector("[data-action=review]");
    if (review) { review.disabled = rows.length === 0; }
  }

  // --- what each screen does when it appears ----------------------------------------------

  var screens = {
    plate: initEntry,
    vin: initEntry,
    notice: initEntry,
    payment: initEntry,
    violations: updateTotals,
    reader: function () { pollPayment("reader"); },
    scan: function () { pollPayment("scan"); },
    receipt: function (section) {
      state.timers.push(window.setTimeout(printReceipt, 400)); // after the receipt has been painted
      var deadline = Date.now() + config.receipt;
      var counter = section.querySelector("[data-role=return-countdown]");
      state.timers.push(window.setInterval(function () {
        var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
        counter.textContent = String(left);
        if (left <= 0) { reset("finished"); }
      }, 250));
    }
  };

  // The reader, or the phone that scanned the code, is at work: ask where the payment stands until it moves on.
  function pollPayment(name) {
    var pending = false;
    state.timers.push(window.setInterval(function () {
      if (pending || state.busy || state.resetting) { return; }
      pending = true;
      request("GET", "/payment").then(function (result) {
        pending = false;
        if (currentScreen() !== name || state.busy) { return; }
        if (result.status === 200 && result.data.screen === name) { return; } // still waiting
        hidePrompt(); // the payment moved on: someone is there, with the full time for what comes next
        handle(result, { method: "GET", path: "/payment" });
      });
    }, config.poll));
  }

  function printReceipt() {
    var receipt = document.getElementById("kiosk-receipt");
    if (!receipt) { return; }
    receipt.setAttribute("data-printed", String(parseInt(receipt.getAttribute("data-printed"), 10) + 1));
    window.print(); // kiosk browsers print silently (e.g. Chromium's --kiosk-printing)
  }

  // --- larger text: the root font size grows, and every size in kiosk.css is in rem -------------

  function largeText() { return document.documentElement.classList.contains("klarge"); }

  function setLargeText(on) {
    document.documentElement.classList.toggle("klarge", on);
    if (largeTextButton) { largeTextButton.setAttribute("aria-pressed", on ? "true" : "false"); }
  }

  // --- taps -----------------------------------------------------------------------------------

  var actions = {
    "start": function () { go("POST", "/sessions", {}); },
    "start-over": function () { reset("start_over"); },
    "finish": function () { reset("finished"); },
    "still-here": hidePrompt,
    "large-text": function () { setLargeText(!largeText()); },
    // A language for this visit only: the page reloads with ?lang=, and every reset
    // (finish, start over, idle) loads the kiosk without it, back in the default language.
    "language": function (button) {
      var code = button.getAttribute("data-locale");
      if (state.token || state.resetting || !code || code === config.locale) { return; }
      window.location.replace(config.home + "?lang=" + encodeURIComponent(code) + (largeText() ? "&text=large" : ""));
    },
    "key": function (button) {
      var input = field();
      setValue(input, input.value + button.getAttribute("data-key"));
      input.focus({ preventScroll: true });
    },
    "backspace": function () {
      var input = field();
      setValue(input, Array.from(input.value).slice(0, -1).join(""));
      input.focus({ preventScroll: true });
    },
    "show-grid": function (button) { showGrid(button.getAttribute("data-grid")); },
    "goto": function (button) { go("GET", button.getAttribute("data-path")); },
    "submit-plate": function () { go("POST", "/plate", { plate: field().value }); },
    "submit-vin": function () { go("POST", "/lookup", { vin_last6: field().value }); },
    "submit-notice": function () { go("POST", "/lookup-notice", { notice_number: field().value }); },
    "submit-payment": function () { go("POST", "/lookup-payment-code", { payment_code: field().value }); },
    "toggle": function (button) {
      button.setAttribute("aria-checked", button.getAttribute("aria-checked") === "true" ? "false" : "true");
      updateTotals(screenEl.firstElementChild);
    },
    "review": function () { go("POST", "/review", { violation_ids: selectedIds() }); },
    "change-selection": function () {
      var ids = screenEl.firstElementChild.getAttribute("data-ids");
      go("GET", "/screens/violations?selected=" + encodeURIComponent(ids));
    },
    "pay": function (button) {
      var ids = screenEl.firstElementChild.getAttribute("data-ids").split(",").map(function (id) {
        return parseInt(id, 10);
      });
      var payload = { violation_ids: ids, idempotency_key: button.getAttribute("data-key") };
      if (button.hasAttribute("data-gateway")) { payload.gateway = button.getAttribute("data-gateway"); }
      go("POST", "/payments", payload);
    },
    "cancel-payment": function () { go("POST", "/payment/cancel", {}); },
    "retry-payment": function () { go("POST", "/payment/retry", {}); },
    "simulate": function (button) { go("POST", "/sandbox/reader", { outcome: button.getAttribute("data-outcome") }); },
    "print": printReceipt
  };

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-action]");
    if (!button || button.disabled) { return; }
    var action = actions[button.getAttribute("data-action")];
    if (action) {
      event.preventDefault();
      action(button);
    }
  });

  // A physical keyboard: Enter takes the screen's main step.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.isComposing) { return; }
    var submit = screenEl.querySelector("[data-submit]:not([disabled])");
    if (submit) {
      event.preventDefault();
      submit.click();
    }
  });

  // Nothing outside the flow: no long-press menus, no dragging things out.
  document.addEventListener("contextmenu", function (event) { event.preventDefault(); });
  document.addEventListener("dragstart", function (event) { event.preventDefault(); });

  // --- idle reset -----------------------------------------------------------------------------

  function showPrompt() {
    state.promptShownAt = Date.now();
    countdownEl.textContent = String(Math.round(config.prompt / 1000));
    promptEl.hidden = false;
    document.getElementById("still-here").focus({ preventScroll: true });
  }

  function hidePrompt() {
    state.promptShownAt = null;
    state.lastInput = Date.now();
    promptEl.hidden = true;
  }

  function noteInput(event) {
    state.lastInput = Date.now();
    var target = event.target;
    if (state.promptShownAt !== null && !(target.closest && target.closest("[data-action=start-over]"))) {
      hidePrompt();
    }
  }
  ["pointerdown", "touchstart", "keydown", "wheel"].forEach(function (type) {
    document.addEventListener(type, noteInput, { capture: true, passive: true });
  });

  window.setInterval(function () {
    if (state.resetting) { return; }
    if (!state.token) {
      // Larger text turned on and left behind before a visit started: back to normal for the next driver.
      if (largeText() && Date.now() - state.lastInput >= config.idle) { setLargeText(false); }
      // Nothing personal before a visit starts, but a language picked and left behind goes back to the default.
      if (config.chosenLocale && Date.now() - state.lastInput >= config.idle) { window.location.replace(config.home); }
      return;
    }
    var now = Date.now();
    if (state.promptShownAt === null) {
      if (now - state.lastInput >= config.idle) { showPrompt(); }
      return;
    }
    var left = Math.max(0, Math.ceil((config.prompt - (now - state.promptShownAt)) / 1000));
    countdownEl.textContent = String(left);
    if (now - state.promptShownAt >= config.prompt) { reset("idle"); }
  }, 250);

  // --- heartbeat --------------------------------------------------------------------------------

  function heartbeat() {
    request("POST", "/heartbeat", {}).then(function (result) {
      if (result.status === 401 || result.status === 403) {
        leave();
      } else if ((result.status === 0 || result.status >= 500) && !state.token && currentScreen() === "welcome") {
        // Nobody is mid-visit: show that the kiosk is paused until FinePay answers again.
        fail("service", null, { method: "GET", path: "/status" });
      }
    });
  }

  // Coming back to this page from the back/forward cache would show an old visit: start afresh.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { window.location.replace(config.home); }
  });

  heartbeat();
  window.setInterval(heartbeat, config.heartbeat);
  startOverButton.hidden = true;
  // Kept across a language change on the welcome screen (which reloads the page), never across visits.
  setLargeText(new URLSearchParams(window.location.search).get("text") === "large");
}());
