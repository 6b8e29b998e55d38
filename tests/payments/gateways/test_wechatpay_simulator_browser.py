"""The WeChat Pay simulator's payer side in Chromium: the payer's page, the H5 trip back, and the JSAPI bridge
called from a merchant page of another origin, as FinePay's pages will call it."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from wechatpayv3 import WeChatPayType

from tests.payments.gateways import test_wechatpay_simulator as api_tests
from tests.payments.gateways.test_wechatpay_simulator import answer, bridge_params, client, place

# the API tests' fixtures, shared: the account made once, a copy per test, the simulator on a free port
account_dir, data_dir, simulator = api_tests.account_dir, api_tests.data_dir, api_tests.simulator

pytestmark = pytest.mark.browser



@pytest.fixture
def page(browser):
    """A fresh phone-sized page with its own cookies."""
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def merchant():
    """A merchant site on 127.0.0.1 (another origin than the simulator's) serving the pages a test gives it."""
    pages = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages.get(self.path.split("?")[0], "<!doctype html><title>merchant</title><p>back at the merchant")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    server.pages = pages
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    server.server_close()


def test_a_phone_that_scans_the_code_and_approves_pays_the_order(simulator, page):
    wxpay = client(simulator)
    code_url = place(wxpay)

    page.goto(f"{simulator.base_url}/simulator/scan?code_url={code_url}")
    assert page.get_by_role("note").inner_text().startswith("SIMULATION")
    page.get_by_role("button", name="Approve").click()

    assert page.get_by_test_id("refusal").inner_text() == "该订单已支付"
    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "SUCCESS"


def test_an_h5_payer_returns_to_the_merchants_redirect_url(simulator, page, merchant):
    wxpay = client(simulator)
    h5_url = answer(wxpay.pay(description="罚款", out_trade_no="FP20261130000001", amount={"total": 100},
                              scene_info={"payer_client_ip": "203.0.113.9", "h5_info": {"type": "Wap"}},
                              pay_type=WeChatPayType.H5))[1]["h5_url"]

    page.goto(h5_url + "&redirect_url=" + quote(f"{merchant.url}/pay/7", safe=""))
    page.get_by_role("button", name="Approve").click()

    page.wait_for_url(f"{merchant.url}/pay/7")
    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == "SUCCESS"


@pytest.mark.parametrize(("outcome", "err_msg", "trade_state"), [
    ("approve", "get_brand_wcpay_request:ok", "SUCCESS"),
    ("cancel", "get_brand_wcpay_request:cancel", "NOTPAY"),
])
def test_the_bridge_pays_from_a_merchant_page_of_another_origin(simulator, page, merchant, outcome, err_msg,
                                                                 trade_state):
    wxpay = client(simulator)
    prepay_id = answer(wxpay.pay(description="罚款", out_trade_no="FP20261130000001", amount={"total": 100},
                                 payer={"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
                                 pay_type=WeChatPayType.JSAPI))[1]["prepay_id"]
    merchant.pages["/pay"] = f"""<!doctype html><title>pay</title><output id="result"></output>
<script>window.WXSIM_OUTCOME = {json.dumps(outcome)};</script>
<script src="{simulator.base_url}/simulator/jsbridge.js"></script>
<script>
  WeixinJSBridge.invoke('getBrandWCPayRequest', {json.dumps(bridge_params(simulator, wxpay, prepay_id))},
    function (res) {{ document.getElementById('result').textContent = res.err_msg; }});
</script>"""

    page.goto(f"{merchant.url}/pay")

    page.wait_for_function("document.getElementById('result').textContent !== ''")
    assert page.locator("#result").inner_text() == err_msg
    assert answer(wxpay.query(out_trade_no="FP20261130000001"))[1]["trade_state"] == trade_state
