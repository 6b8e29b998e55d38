"""Two languages: zh_CN by default, English on request; the switcher; translated errors and complete catalogues."""
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po
from flask import g

from finepay.formatting import format_money, one_of
from finepay.settings import from_env
from tests.factories import make_violation
from tests.kiosk.helpers import enrol, prove, start_visit, vehicle
from tests.payments.helpers import end_session_after_each_request
from tests.staff.helpers import make_supervisor, paid_payment, sign_in_as

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "translations"
CHECK = ROOT / "scripts" / "i18n_check.py"


@pytest.fixture
def app_config():
    """The production default: nothing chosen means Chinese."""
    return {"DEFAULT_LOCALE": "zh_CN"}


@pytest.fixture(autouse=True)
def _each_request_starts_afresh(app):
    """Every request forgets the previous one's user and session, as in production."""
    @app.before_request
    def _forget_the_previous_user():
        g.pop("_login_user", None)
        g.pop("_flask_babel", None)  # Flask-Babel keeps the locale in g, which the pushed app context shares

    end_session_after_each_request(app)


def catalog(locale):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale=locale)


def english_sentences():
    """Multi-word msgids without placeholders whose Chinese differs: none may show on a Chinese page."""
    found = []
    for message in catalog("zh_Hans_CN"):
        if not message.id or isinstance(message.id, (list, tuple)):
            continue
        text = message.id
        if "%(" in text or "{" in text or " " not in text.strip() or message.string == text:
            continue
        if not re.search(r"[A-Za-z]{3,} [A-Za-z]{2,}", text):
            continue
        found.append(unescape(text))
    return found


def visible_text(html):
    """A page's words as a person or a screen reader meets them: text, titles, labels, alt texts."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    attributes = " ".join(re.findall(r'(?:aria-label|alt|title|placeholder)="([^"]*)"', html))
    return unescape(re.sub(r"<[^>]+>", " ", html) + " " + attributes)


def assert_all_chinese(html, where):
    text = visible_text(html)
    left = [sentence for sentence in english_sentences() if sentence in text]
    assert not left, f"{where} shows untranslated text: {left[:5]}"
    assert re.search(r"[\u4e00-\u9fff]", text), f"{where} has no Chinese at all"


# --- choosing the language ---------------------------------------------------------------------------


def test_the_default_language_setting_is_chinese(tmp_path):
    assert from_env(str(tmp_path), {})["DEFAULT_LOCALE"] == "zh_CN"


def test_a_visitor_who_chose_nothing_gets_chinese(client):
    page = client.get("/").get_data(as_text=True)

    assert '<html lang="zh-CN">' in page
    assert "查询并缴纳交通违法罚款" in page


@pytest.mark.parametrize("header, lang, words", [
    ("zh-CN,zh;q=0.9,en;q=0.5", "zh-CN", "查询并缴纳交通违法罚款"),
    ("zh-TW", "zh-CN", "查询并缴纳交通违法罚款"),  # no Traditional catalogue: the default
    ("en-GB,en;q=0.9", "en", "Look up and pay your traffic fines"),
    ("fr-FR", "zh-CN", "查询并缴纳交通违法罚款"),
])
def test_the_browser_languages_pick_the_language(client, header, lang, words):
    page = client.get("/", headers={"Accept-Language": header}).get_data(as_text=True)

    assert f'<html lang="{lang}">' in page
    assert words in page


def test_the_lang_cookie_overrides_the_browser_languages(client):
    client.set_cookie("lang", "en")
    page = client.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="en">' in page and "Look up and pay your traffic fines" in page

    client.set_cookie("lang", "zh_CN")
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in page


def test_an_unknown_lang_cookie_is_ignored(client):
    client.set_cookie("lang", "xx")
    assert '<html lang="en">' in client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)


def test_every_driver_and_staff_page_has_the_switcher_as_plain_links(client):
    for path in ("/", "/staff/login"):
        page = client.get(path).get_data(as_text=True)
        assert 'class="lang-switch"' in page, path
        assert f'href="/lang/en?next={path}" lang="en" hreflang="en"' in page, path
        assert re.search(r'href="/lang/zh_CN\?next=[^"]*" lang="zh-CN"[^>]*aria-current="true">中文</a>', page), path
        assert ">English</a>" in page


def test_the_switcher_remembers_the_choice_and_goes_back(client):
    response = client.get("/lang/en?next=/staff/login")

    assert response.status_code == 303
    assert response.headers["Location"] == "/staff/login"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("lang=en;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert '<html lang="en">' in client.get("/staff/login").get_data(as_text=True)


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/", "/\\evil.example", "\\\\evil.example", "javascript:alert(1)",
    "evil.example", "/\r\nSet-Cookie:x=1", "/\nSet-Cookie:x=1", "http:/evil.example", "/\tevil", "",
])
def test_the_switcher_only_goes_back_to_this_site(client, target):
    response = client.get("/lang/zh_CN", query_string={"next": target})

    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert response.headers.getlist("Set-Cookie") == [h for h in response.headers.getlist("Set-Cookie")
                                                      if h.startswith("lang=")]


def test_the_switcher_refuses_an_unknown_language(client):
    response = client.get("/lang/fr?next=/")

    assert response.status_code == 404
    assert "Set-Cookie" not in response.headers or "lang=" not in response.headers["Set-Cookie"]


def test_the_switcher_on_a_post_result_page_leads_back_to_the_form_not_to_a_url_with_the_plate(client):
    make_violation(plate="蒙B12345", vin_last6="A12345")
    page = client.post("/lookup", data={"plate": "蒙B12345", "proof": "vin", "vin_last6": "A12345"}).get_data(
        as_text=True)

    assert 'href="/lang/en?next=/"' in page
    assert "B12345" not in "".join(re.findall(r'href="/lang/[^"]*"', page))


def test_the_switcher_on_a_page_answering_a_post_never_leads_to_a_get_of_another_page(client):
    # GET /pay/review would be /pay/<payment_id> with the id "review": a 404, not the review page.
    page = client.post("/pay/review", data={}).get_data(as_text=True)

    assert 'href="/lang/en?next=/"' in page
    assert "next=/pay/review" not in page


# --- what is translated -----------------------------------------------------------------------------------


def test_an_api_error_message_follows_accept_language_and_its_code_does_not(client):
    body = {"plate": "蒙B99999", "vin_last6": "Z99999"}
    chinese = client.post("/api/v1/lookups", json=body, headers={"Accept-Language": "zh-CN"})
    english = client.post("/api/v1/lookups", json=body, headers={"Accept-Language": "en"})

    assert chinese.status_code == english.status_code == 404
    assert chinese.get_json()["code"] == english.get_json()["code"] == "not_found"
    assert chinese.get_json()["message"] == "没有与该车牌号码和识别代号相符的违法记录。请核对后重试。"
    assert english.get_json()["message"].startswith("No violations match this plate and code.")


def test_validation_messages_from_marshmallow_are_translated_field_by_field(client):
    response = client.post("/api/v1/lookups", json={"vin_last6": "A12345", "extra": 1},
                           headers={"Accept-Language": "zh-CN"})

    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "invalid_input"
    assert body["message"] == "部分项目缺失或无效。"
    assert body["errors"]["plate"] == ["缺少必填项。"]
    assert body["errors"]["extra"] == ["未知字段。"]


def test_a_plate_error_is_translated(client):
    response = client.post("/api/v1/lookups", json={"plate": "!!", "vin_last6": "A12345"},
                           headers={"Accept-Language": "zh-CN"})

    assert response.get_json()["errors"]["plate"] == ["车牌号码含有号牌上不能出现的字符。"]


def test_a_plate_format_error_is_translated(client):
    response = client.post("/api/v1/lookups", json={"plate": "AB12345", "vin_last6": "A12345"},
                           headers={"Accept-Language": "zh-CN"})

    assert response.get_json()["errors"]["plate"] == ["车牌号码应以省份简称（如蒙、京）开头。"]


def test_the_rate_limit_message_is_translated(app, client):
    app.config["RATELIMIT_ENABLED"] = True
    for n in range(25):
        # A plate of its own each time: this is the per-client limit, not one plate's failure budget.
        response = client.post("/api/v1/lookups", json={"plate": f"蒙B9{n:04d}", "vin_last6": "Z99999"},
                               headers={"Accept-Language": "zh-CN"})
        if response.status_code == 429:
            break
    assert response.status_code == 429
    assert response.get_json() == {"code": "rate_limited", "message": "请求过于频繁，请稍候再试。", "errors": {}}


def test_the_challenge_message_is_translated(app, client):
    for _ in range(11):
        response = client.post("/api/v1/lookups", json={"plate": "蒙B99999", "vin_last6": "Z99999"})

    assert response.status_code == 429
    assert response.get_json()["code"] == "challenge_required"
    assert response.get_json()["message"] == (
        "该号牌近期被多次输入错误的代码，您的设备需要先完成一项简短的安全验证才能查询，需要几秒钟。")


@pytest.mark.parametrize("header, expected", [("zh-CN", "¥200.00"), ("en", "CN¥200.00")])
def test_money_is_formatted_for_the_language(app, header, expected):
    with app.test_request_context("/", headers={"Accept-Language": header}):
        assert format_money(20000) == expected


@pytest.mark.parametrize("header, expected", [("zh-CN", "微信支付、支付宝或银行卡"), ("en", "微信支付, 支付宝, or 银行卡")])
def test_alternatives_are_listed_as_the_language_lists_them(app, header, expected):
    with app.test_request_context("/", headers={"Accept-Language": header}):
        assert one_of(["微信支付", "支付宝", "银行卡"]) == expected
        assert one_of(["微信支付"]) == "微信支付"


def test_the_driver_pages_are_all_chinese(app, client):
    make_violation(plate="蒙B12345", vin_last6="A12345", fine=20000)
    pages = {
        "home": client.get("/"),
        "no match": client.post("/lookup", data={"plate": "蒙B99999", "proof": "vin", "vin_last6": "Z99999"}),
        "form errors": client.post("/lookup", data={"plate": "", "proof": "vin", "vin_last6": ""}),
        "results": client.post("/lookup", data={"plate": "蒙B12345", "proof": "vin", "vin_last6": "A12345"}),
        "not found": client.get("/receipts/FP-0000-0000-0000-0000"),
    }
    for name, response in pages.items():
        assert_all_chinese(response.get_data(as_text=True), name)
    payment, _violation = paid_payment()
    assert_all_chinese(client.get(f"/receipts/{payment.receipt_number}").get_data(as_text=True), "receipt")


def test_the_staff_console_is_all_chinese(app, client):
    assert_all_chinese(client.get("/staff/login").get_data(as_text=True), "sign-in")
    payment, violation = paid_payment()
    sign_in_as(client, make_supervisor())
    paths = ["/staff/", "/staff/search?q=" + payment.plate, f"/staff/payments/{payment.id}",
             f"/staff/violations/{violation.id}", "/staff/reconciliation", "/staff/imports", "/staff/terminals",
             "/staff/keys", "/staff/users", "/staff/audit"]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        assert_all_chinese(response.get_data(as_text=True), path)


def test_the_kiosk_screens_are_all_chinese_and_its_switcher_lasts_one_visit(app, client):
    kiosk = enrol(client)
    shell = kiosk.client.get("/kiosk").get_data(as_text=True)
    assert '<html lang="zh-CN" class="kiosk">' in shell
    assert_all_chinese(shell, "kiosk welcome")
    for code, name, lang in (("zh_CN", "中文", "zh-CN"), ("en", "English", "en")):
        assert re.search(rf'lang="{lang}"[^>]*data-action="language" data-locale="{code}">{name}</button>', shell)
    assert "coming soon" not in shell and "disabled>中文" not in shell

    chosen = kiosk.client.get("/kiosk?lang=en").get_data(as_text=True)
    assert '<html lang="en" class="kiosk">' in chosen
    assert 'data-locale="en" data-chosen-locale="en"' in chosen
    # No cookie remembers it: the next visit (a plain reload, as every reset does) is in the default again.
    assert kiosk.client.get_cookie("lang") is None
    assert '<html lang="zh-CN" class="kiosk">' in kiosk.client.get("/kiosk").get_data(as_text=True)
    kiosk.client.set_cookie("lang", "en")  # even a driver's cookie from the website does not stick here
    assert '<html lang="zh-CN" class="kiosk">' in kiosk.client.get("/kiosk").get_data(as_text=True)

    vehicle()
    headers = start_visit(kiosk.client)
    screen = prove(kiosk.client, {**headers, "Accept-Language": "zh-CN"}).get_json()
    assert_all_chinese(screen["html"], "kiosk violations")
    english = kiosk.client.post("/kiosk/api/plate", json={"plate": "!!"}, headers={**headers, "Accept-Language": "en"})
    assert english.status_code == 422
    assert "Plate has characters" in str(english.get_json())


# --- the catalogues -----------------------------------------------------------------------------------------


def test_both_catalogues_are_complete_and_up_to_date():
    done = subprocess.run([sys.executable, str(CHECK)], cwd=ROOT, capture_output=True, text=True)

    assert done.returncode == 0, done.stdout + done.stderr


def check_a_changed_copy(tmp_path, locale, change, *args):
    """Copy the catalogues, apply change to locale's catalogue, and run the check on the copy."""
    copy = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, copy, ignore=shutil.ignore_patterns("*.mo", "*.pot"))
    path = copy / locale / "LC_MESSAGES" / "messages.po"
    with open(path, "rb") as handle:
        catalog = read_po(handle, locale=locale)
    change(catalog)
    with open(path, "wb") as handle:
        write_po(handle, catalog, width=100)
    return subprocess.run([sys.executable, str(CHECK), "--translations", str(copy), *args],
                          cwd=ROOT, capture_output=True, text=True)


def test_the_check_reports_an_untranslated_message(tmp_path):
    def change(catalog):
        catalog["Pay traffic fines"].string = ""
        catalog["Skip to content"].flags.add("fuzzy")

    done = check_a_changed_copy(tmp_path, "zh_Hans_CN", change, "--skip-source")

    assert done.returncode == 1
    assert "zh_Hans_CN: untranslated: 'Pay traffic fines'" in done.stdout
    assert "zh_Hans_CN: fuzzy: 'Skip to content'" in done.stdout


def test_the_check_reports_a_catalogue_behind_the_source(tmp_path):
    def change(catalog):
        catalog.delete("Skip to content")

    done = check_a_changed_copy(tmp_path, "en", change, "--locale", "en")

    assert done.returncode == 1
    assert "en: out of date, not in the catalogue: 'Skip to content'" in done.stdout


def test_the_check_reports_a_broken_placeholder(tmp_path):
    def change(catalog):
        catalog["Kiosk %(name)s"].string = "自助缴款机 %(nom)s"

    done = check_a_changed_copy(tmp_path, "zh_Hans_CN", change, "--skip-source", "--locale", "zh_Hans_CN")

    assert done.returncode == 1
    assert "Kiosk %(name)s" in done.stdout


def test_the_check_reports_a_lone_percent_that_would_break_every_page(tmp_path):
    # Jinja %-formats every template string: "100%" in a translation is a 500 on every page.
    def change(catalog):
        catalog["Skip to content"].string = "跳到正文 (100%)"

    done = check_a_changed_copy(tmp_path, "zh_Hans_CN", change, "--skip-source", "--locale", "zh_Hans_CN")

    assert done.returncode == 1 and "Skip to content" in done.stdout and "% formatting fails" in done.stdout


@pytest.mark.parametrize("wrong, right", [
    ("可成功支付的 Visa 卡: 缴款 %(amount)s", "可成功支付的 Visa 卡：缴款 %(amount)s"),
    ("缴款 %(amount)s (含服务费)", "缴款 %(amount)s（含服务费）"),
    ("确定吗?", "确定吗？"),
    ("已缴,谢谢!", "已缴，谢谢！"),
    ("请注意;本页", "请注意；本页"),
], ids=["colon", "brackets", "question", "comma_bang", "semicolon"])
def test_the_check_reports_half_width_punctuation_beside_chinese(tmp_path, wrong, right):
    msgid = "Kiosk %(name)s"

    def set_to(text):
        def change(catalog):
            catalog[msgid].string = text.replace("%(amount)s", "%(name)s")
        return change

    done = check_a_changed_copy(tmp_path, "zh_Hans_CN", set_to(wrong), "--skip-source", "--locale", "zh_Hans_CN")
    fixed = check_a_changed_copy(tmp_path / "fixed", "zh_Hans_CN", set_to(right), "--skip-source",
                                 "--locale", "zh_Hans_CN")

    assert done.returncode == 1 and "half-width punctuation beside Chinese" in done.stdout and msgid in done.stdout
    assert fixed.returncode == 0, fixed.stdout


def test_the_typography_check_leaves_placeholders_codes_and_times_alone(tmp_path):
    def change(catalog):
        catalog["Kiosk %(name)s"].string = "自助缴款机 %(name)s（例如 hall-1，时间 14:05，格式“类型:编号”，网址 https://x.cn）"

    done = check_a_changed_copy(tmp_path, "zh_Hans_CN", change, "--skip-source", "--locale", "zh_Hans_CN")

    assert done.returncode == 0, done.stdout


def test_the_check_reports_a_renamed_brace_placeholder(tmp_path):
    def change(catalog):
        catalog["{name} contains control characters"].string = "{名称} 含有控制字符"

    done = check_a_changed_copy(tmp_path, "zh_Hans_CN", change, "--skip-source", "--locale", "zh_Hans_CN")

    assert done.returncode == 1 and "{name} contains control characters" in done.stdout


def test_the_check_reports_a_fuzzy_catalogue_header(tmp_path):
    # pybabel compile skips such a catalogue and exits 0, writing no .mo: English everywhere.
    def change(catalog):
        catalog.fuzzy = True

    done = check_a_changed_copy(tmp_path, "zh_Hans_CN", change, "--skip-source", "--locale", "zh_Hans_CN")

    assert done.returncode == 1 and "header is marked fuzzy" in done.stdout


def test_the_check_reports_a_message_that_became_plural_in_the_source(tmp_path):
    def change(catalog):
        plural = next(m for m in catalog if isinstance(m.id, tuple) and m.id[0] == "%(num)d payment")
        catalog.delete(plural.id)
        catalog.add("%(num)d payment", "%(num)d payment")  # singular only: the source's plural is missing

    done = check_a_changed_copy(tmp_path, "en", change, "--locale", "en")

    assert done.returncode == 1 and "out of date" in done.stdout and "%(num)d payment" in done.stdout
