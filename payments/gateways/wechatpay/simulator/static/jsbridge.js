/* WeChat Pay simulator: a stand-in for WeChat's in-app WeixinJSBridge (SIMULATION, no real money moves).
 *
 * Load it with <script src="SIMULATOR/simulator/jsbridge.js"> in the merchant's page. It defines
 * WeixinJSBridge.invoke('getBrandWCPayRequest', params, callback): the simulator checks appId and the
 * merchant's paySign over the prepay_id, pays the order and calls back with
 * {err_msg: 'get_brand_wcpay_request:ok'} (or ':cancel' / ':fail').
 * A test chooses the payer's answer beforehand: window.WXSIM_OUTCOME = 'approve' | 'cancel' | 'fail'.
 */
(function () {
  var origin = new URL(document.currentScript.src).origin;
  window.WeixinJSBridge = {
    simulated: true,
    invoke: function (name, params, callback) {
      if (name !== 'getBrandWCPayRequest') {
        callback({err_msg: name + ':fail unsupported by the simulator'});
        return;
      }
      var body = Object.assign({}, params, {outcome: window.WXSIM_OUTCOME || 'approve'});
      // text/plain: a simple cross-origin request, no preflight
      fetch(origin + '/simulator/jsbridge/pay', {method: 'POST', headers: {'Content-Type': 'text/plain'},
                                                 body: JSON.stringify(body)})
        .then(function (response) { return response.json(); })
        .then(callback, function () { callback({err_msg: 'get_brand_wcpay_request:fail'}); });
    }
  };
  document.dispatchEvent(new Event('WeixinJSBridgeReady'));
})();
