"""Whose service it is: the authority's settings, production's refusal without them, and every page's header and footer."""
from html import unescape

import pytest

from finepay.app import create_app
from finepay.settings import DEMO_AUTHORITY, SettingsError, from_env
from tests.conftest import BASE_CONFIG, in_both_languages, make_app, translated
from tests.kiosk.helpers import enrol

CITY = {
    "AUTHORITY_NAME": "示例市公安局交通警察支队", "AUTHORITY_EMBLEM": "", "SERVICE_HOTLINE": "12122",
    "ICP_RECORD": "示ICP备12345678号-2", "PSB_RECORD": "示公网安备99999999999999号",
    "SERVICE_HALL_ADDRESS": "示例市示例区示例路1号", "SERVICE_HALL_HOURS": "周一至周六 8:30–17:30",
}


def page(response):
    return unescape(response.get_data(as_text=True))


def test_development_shows_the_demo_authority_unless_told_otherwise(tmp_path):
    demo = from_env(str(tmp_path), {})
    city = from_env(str(tmp_path), CITY)

    assert {name: demo[name] for name in DEMO_AUTHORITY} == DEMO_AUTHORITY
    assert demo["AUTHORITY_NAME"] == "包头市公安局交通管理支队" and demo["SERVICE_HOTLINE"] == "12122"
    assert {name: city[name] for name in CITY} == CITY


def test_production_has_no_demo_authority(tmp_path):
    config = from_env(str(tmp_path), {"FINEPAY_ENV": "production"})

    assert {config[name] for name in DEMO_AUTHORITY} == {""}


def test_production_refuses_to_start_without_the_authoritys_name(monkeypatch, tmp_path):
    monkeypatch.setenv("FINEPAY_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.sqlite")
    monkeypatch.setenv("AUTHORITY_NAME", "   ")

    with pytest.raises(SettingsError, match="AUTHORITY_NAME"):
        create_app()


@pytest.mark.parametrize("emblem", ["../finepay/app.py", "/etc/hostname", "img/missing.svg", "css/app.css",
                                    "https://example.com/emblem.svg"])
def test_an_emblem_outside_static_or_not_an_image_is_refused(tmp_path, emblem):
    with pytest.raises(SettingsError, match="AUTHORITY_EMBLEM"):
        create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/e.sqlite",
                    "AUTHORITY_EMBLEM": emblem})


def test_the_demo_emblem_is_served_as_an_image_by_the_site_itself(app, client):
    home = page(client.get("/"))
    emblem = client.get("/static/img/emblem-demo.svg")

    assert 'src="/static/img/emblem-demo.svg"' in home
    assert emblem.status_code == 200 and emblem.mimetype == "image/svg+xml"
    assert emblem.headers["X-Content-Type-Options"] == "nosniff"


@in_both_languages
def test_every_driver_page_names_the_authority_in_its_header_and_footer(app, client):
    for path in ("/", "/receipts/FP-NOSUCH"):
        html = page(client.get(path))
        header, footer = html.split("</header>")[0], html.split('id="site-footer"')[1]

        assert 'id="authority-name">包头市公安局交通管理支队<' in header, path
        assert translated(app, "Online payment of traffic fines") in header and ">FinePay<" in header
        assert translated(app, "This service is provided by %(authority)s.", authority="包头市公安局交通管理支队") in footer
        assert translated(app, "Service hotline") in footer and 'href="tel:12122"' in footer
        assert DEMO_AUTHORITY["SERVICE_HALL_ADDRESS"] in footer and DEMO_AUTHORITY["SERVICE_HALL_HOURS"] in footer
        assert DEMO_AUTHORITY["ICP_RECORD"] in footer and DEMO_AUTHORITY["PSB_RECORD"] in footer


def test_a_citys_own_settings_replace_the_demo_everywhere(database_url):
    app = make_app(database_url, **CITY)
    with app.app_context():
        html = page(app.test_client().get("/"))

    assert CITY["AUTHORITY_NAME"] in html and CITY["ICP_RECORD"] in html and CITY["SERVICE_HALL_HOURS"] in html
    assert "包头" not in html and "<img" not in html.split("</header>")[0]


@in_both_languages
def test_the_kiosk_names_the_authority_in_its_bar_and_footer(app, client):
    enrol(client, name="hall-1")
    html = page(client.get("/kiosk"))
    bar, footer = html.split("</header>")[0], html.split('id="kiosk-footer"')[1].split("</footer>")[0]

    assert 'id="authority-name">包头市公安局交通管理支队<' in bar and ">FinePay<" in bar
    assert translated(app, "Traffic fine payment kiosk") in bar
    assert translated(app, "Service hotline: %(number)s", number="12122") in footer
    assert translated(app, "Kiosk %(name)s", name="hall-1") in footer
