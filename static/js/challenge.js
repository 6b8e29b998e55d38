// FinePay's proof-of-work check (ALTCHA v2, PBKDF2/SHA-256), solved with the browser's own Web Crypto:
// served by FinePay, nothing loaded from elsewhere, no inline code, nothing to click or look at.
//
// A page that needs it renders, inside the form to send, a hidden input named "altcha" and an element
// with data-challenge (the challenge as JSON) whose data-status names a visible role=status element.
// This script solves the challenge at once, says what it is doing in that element (screen readers hear
// it), fills the input, and sends the form when the person has asked to (data-auto-submit: they already
// had, before the page asked for the check). The kiosk calls window.FinePayChallenge.solve itself.
(function () {
  "use strict";

  var PARALLEL = 4; // Web Crypto runs derivations off the main thread: a few at once use more cores

  function hexToBytes(hex) {
    var bytes = new Uint8Array(hex.length / 2);
    for (var i = 0; i < bytes.length; i += 1) { bytes[i] = parseInt(hex.substr(i * 2, 2), 16); }
    return bytes;
  }

  function bytesToHex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  }

  // The KDF password: the nonce's bytes, then the counter as 4 bytes big-endian.
  function password(nonce, counter) {
    var bytes = new Uint8Array(nonce.length + 4);
    bytes.set(nonce);
    new DataView(bytes.buffer).setUint32(nonce.length, counter, false);
    return bytes;
  }

  function derive(parameters, nonce, salt, counter) {
    var subtle = window.crypto.subtle;
    return subtle.importKey("raw", password(nonce, counter), "PBKDF2", false, ["deriveBits"]).then(function (key) {
      return subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: salt, iterations: parameters.cost },
        key, parameters.keyLength * 8);
    });
  }

  // Resolves with the value for the "altcha" field: base64 of {challenge, solution}.
  function solve(challenge) {
    var parameters = challenge && challenge.parameters;
    if (!window.crypto || !window.crypto.subtle || !parameters || parameters.algorithm !== "PBKDF2/SHA-256") {
      return Promise.reject(new Error("This browser cannot do the check."));
    }
    var nonce = hexToBytes(parameters.nonce);
    var salt = hexToBytes(parameters.salt);
    var prefix = String(parameters.keyPrefix || "").toLowerCase();
    var started = Date.now();
    return new Promise(function (resolve, reject) {
      var next = 0;
      var finished = false;
      function tryNext() {
        if (finished) { return; }
        if (next > 0xFFFFFFFF) { finished = true; reject(new Error("No solution.")); return; }
        var counter = next;
        next += 1;
        derive(parameters, nonce, salt, counter).then(function (bits) {
          if (finished) { return; }
          var key = bytesToHex(bits);
          if (key.indexOf(prefix) === 0) {
            finished = true;
            var solution = { counter: counter, derivedKey: key, time: Date.now() - started };
            resolve(window.btoa(JSON.stringify({ challenge: challenge, solution: solution })));
          } else {
            tryNext();
          }
        }, function (error) {
          finished = true;
          reject(error);
        });
      }
      for (var i = 0; i < PARALLEL; i += 1) { tryNext(); }
    });
  }

  function say(element, text) {
    if (element && text) { element.textContent = text; }
  }

  function wire(box) {
    var form = box.closest("form");
    var input = form && form.querySelector("input[name=altcha]");
    var status = document.getElementById(box.getAttribute("data-status"));
    if (!input) { return; }
    var challenge;
    try {
      challenge = JSON.parse(box.getAttribute("data-challenge"));
    } catch (ignored) {
      say(status, box.getAttribute("data-failed"));
      return;
    }
    var solved = false;
    var send = box.hasAttribute("data-auto-submit");
    form.addEventListener("submit", function (event) {
      if (solved) { return; }
      // Sent before the check is done: hold it, and send it as soon as the check is.
      event.preventDefault();
      send = true;
      say(status, box.getAttribute("data-waiting"));
    });
    say(status, box.getAttribute("data-checking"));
    solve(challenge).then(function (payload) {
      input.value = payload;
      solved = true;
      say(status, box.getAttribute(send ? "data-sending" : "data-done"));
      if (send) {
        if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
      }
    }, function () {
      say(status, box.getAttribute("data-failed"));
    });
  }

  window.FinePayChallenge = { solve: solve };
  document.querySelectorAll("[data-challenge]").forEach(wire);
})();
