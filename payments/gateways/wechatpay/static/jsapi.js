// WeChat Pay inside WeChat's browser: hand the signed order to WeixinJSBridge (WeChat injects it), then
// reload the payment's page, which re-reads the payment. The bridge opens by itself once per order; after
// that (cancelled, failed) the button opens it again.
(function () {
  "use strict";
  var box = document.getElementById("wechatpay-jsapi");
  if (!box) { return; }
  var params = JSON.parse(box.dataset.params);
  var button = document.getElementById("wechatpay-pay");
  var opened = "wechatpay-opened:" + params["package"];

  function pay() {
    button.disabled = true;
    window.WeixinJSBridge.invoke("getBrandWCPayRequest", params, function () {
      window.location.assign(box.dataset.returnTo);
    });
  }

  function ready() {
    button.addEventListener("click", pay);
    if (!window.sessionStorage.getItem(opened)) {
      window.sessionStorage.setItem(opened, "1");
      pay();
    }
  }

  if (typeof window.WeixinJSBridge === "undefined") {
    document.addEventListener("WeixinJSBridgeReady", ready, false);
  } else {
    ready();
  }
}());
