"""The seam's next action: the pay page and the kiosk draw what the adapter asks of the payer, whichever adapter."""
import pytest
from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from markupsafe import escape

from payments.gateways import (
    ENTER_CARD,
    IN_APP,
    NEXT_ACTION_KINDS,
    PRESENT_CARD,
    REDIRECT,
    SCAN_QR,
    SURFACE_BROWSER,
    SURFACE_KIOSK,
    NextAction,
    Payer,
    PaymentGateway,
    gateway_named,
    load_gateway_class,
    return_url,
)
from tests.conftest import in_app_language, in_both_languages
from tests.payments.helpers import create_ok, fresh_violation


def test_each_kind_is_built_with_what_the_page_needs():
    assert NextAction.enter_card("x/pay.html", choices=(1, 2)).context["choices"] == (1, 2)
    assert NextAction.redirect("https://pay.example/h5?id=1").url == "https://pay.example/h5?id=1"
    assert NextAction.scan_qr("weixin://wxpay/bizpayurl?pr=abc").poll_seconds == 3
    assert NextAction.in_app("x/bridge.html", {"package": "prepay_id=wx1"}).params["package"] == "prepay_id=wx1"
    assert NextAction.present_card().fragment is None
    assert {a.kind for a in [NextAction.enter_card("f"), NextAction.redirect("u"), NextAction.scan_qr("q"),
                             NextAction.in_app("f", {}), NextAction.present_card()]} == set(NEXT_ACTION_KINDS)
    assert (ENTER_CARD, REDIRECT, SCAN_QR, IN_APP, PRESENT_CARD) == NEXT_ACTION_KINDS


@pytest.mark.parametrize("kwargs", [
    {"kind": "telepathy"}, {"kind": ENTER_CARD}, {"kind": REDIRECT}, {"kind": SCAN_QR}, {"kind": IN_APP},
])
def test_an_action_missing_what_its_kind_needs_is_refused(kwargs):
    with pytest.raises(ValueError):
        NextAction(**kwargs)


def test_an_actions_parameters_cannot_be_changed_after_the_adapter_made_it():
    action = NextAction.in_app("x/bridge.html", {"paySign": "abc"})

    with pytest.raises(TypeError):
        action.params["paySign"] = "forged"


def test_the_base_adapter_offers_nothing_and_accepts_no_posted_method():
    gateway = PaymentGateway({})

    assert gateway.next_action(None, Payer()) is None
    assert not gateway.accepts_posted_method("pm_card_visa")
    assert not gateway.simulated


def test_the_return_url_is_the_payments_own_page(app):
    with app.test_request_context():
        assert return_url("pay_1", external=False) == "/pay/pay_1"
        assert return_url("pay_1") == "http://localhost/pay/pay_1"
        app.config["PUBLIC_BASE_URL"] = "https://fines.example.gov.cn/"
        assert return_url("pay_1") == "https://fines.example.gov.cn/pay/pay_1"


def offer(monkeypatch, action):
    """Make the running adapter ask the payer for ``action``, and remember who asked."""
    asked = []

    def next_action(payment, payer):
        asked.append(payer)
        return action

    monkeypatch.setattr(gateway_named("sandbox"), "next_action", next_action)
    return asked


def test_a_qr_code_action_is_drawn_and_the_page_waits_for_the_payment(client, monkeypatch):
    payment = create_ok(client, [fresh_violation().id])
    asked = offer(monkeypatch, NextAction.scan_qr("weixin://wxpay/bizpayurl?pr=abc123", poll_seconds=2))

    page = client.get(f"/pay/{payment['id']}", headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0)"})

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="pay-qr"' in html and "<svg" in html
    assert '<meta http-equiv="refresh" content="2">' in html
    assert "sandbox-methods" not in html
    assert asked == [Payer(surface=SURFACE_BROWSER, user_agent="Mozilla/5.0 (Windows NT 10.0)")]


def test_a_redirect_action_is_a_link_to_the_gateways_page(client, monkeypatch):
    payment = create_ok(client, [fresh_violation().id])
    offer(monkeypatch, NextAction.redirect("https://wallet.example/h5pay?prepay=wx1&redirect=x"))

    html = client.get(f"/pay/{payment['id']}").get_data(as_text=True)

    assert 'id="pay-redirect"' in html
    assert 'href="https://wallet.example/h5pay?prepay=wx1&amp;redirect=x"' in html


def test_no_action_says_payments_are_not_available(client, monkeypatch):
    payment = create_ok(client, [fresh_violation().id])
    offer(monkeypatch, None)

    html = client.get(f"/pay/{payment['id']}").get_data(as_text=True)

    assert "Card payments are not available right now" in html
    assert "<form" not in html.split('id="status"')[1]


def test_the_adapter_is_not_asked_once_the_payment_is_paid(client, monkeypatch):
    payment = create_ok(client, [fresh_violation().id])
    client.post(f"/api/v1/payments/{payment['id']}/confirm", json={"payment_method": "pm_card_visa"})
    asked = offer(monkeypatch, NextAction.scan_qr("never-drawn"))

    assert client.get(f"/pay/{payment['id']}").status_code == 303
    assert asked == []


def test_the_kiosk_asks_for_the_action_at_a_kiosk(app):
    assert gateway_named("sandbox").next_action(None, Payer(surface=SURFACE_KIOSK)).kind == PRESENT_CARD


@in_both_languages
def test_the_qr_hint_names_the_app_to_open_not_the_way_of_paying(app, client, monkeypatch):
    """WeChat Pay's codes are scanned in 微信 (the app): "打开微信支付" names no app a driver has."""
    payment = create_ok(client, [fresh_violation().id])
    offer(monkeypatch, NextAction.scan_qr("weixin://wxpay/bizpayurl?pr=abc123", poll_seconds=2))
    monkeypatch.setattr(gateway_named("sandbox"), "app_label", _l("WeChat"), raising=False)

    html = client.get(f"/pay/{payment['id']}").get_data(as_text=True)

    with in_app_language(app):
        hint = gettext("Open %(app)s on your phone, scan the code and pay there. This page moves on by itself.",
                       app=gettext("WeChat"))
    assert str(escape(hint)) in html
    assert "打开微信支付" not in html and "Open WeChat Pay" not in html


@pytest.mark.parametrize(("gateway", "zh", "en"), [("wechatpay", "微信", "WeChat"), ("alipay", "支付宝", "Alipay"),
                                                   ("sandbox", "银行卡（沙箱）", "Card (sandbox)")])
def test_each_gateway_names_the_app_its_codes_are_scanned_in(app, gateway, zh, en):
    adapter = object.__new__(load_gateway_class(gateway))  # its class's words: no settings needed
    with app.test_request_context():
        with force_locale("zh_CN"):
            assert str(adapter.app) == zh
        with force_locale("en"):
            assert str(adapter.app) == en
