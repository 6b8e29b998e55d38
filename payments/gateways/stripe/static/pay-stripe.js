// Stripe card payments: Stripe.js turns the card into a payment-method token in the
// browser (card numbers never reach FinePay); FinePay's server confirms it.
(function () {
  "use strict";
  var box = document.getElementById("card-payment");
  if (!box || typeof Stripe === "undefined") { return; }
  var stripe = Stripe(box.dataset.publishableKey);
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  var button = document.getElementById("pay-button");
  var errors = document.getElementById("card-errors");

  function fail(message) {
    errors.textContent = message;
    button.disabled = false;
  }

  button.addEventListener("click", function () {
    button.disabled = true; // one click, one attempt
    errors.textContent = "";
    stripe.createPaymentMethod({ type: "card", card: card }).then(function (result) {
      if (result.error) { return fail(result.error.message); }
      return fetch(box.dataset.confirmUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ payment_method: result.paymentMethod.id })
      }).then(function (response) { return response.json(); }).then(function (payment) {
        if (payment.status === "requires_action") {
          return stripe.handleNextAction({ clientSecret: box.dataset.clientSecret }).then(function () {
            window.location.reload();
          });
        }
        window.location.reload();
      });
    }).catch(function () { fail(errors.dataset.generic || "The payment could not be sent. Please try again."); });
  });
})();
