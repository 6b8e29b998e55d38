"""Formatting money and times for people (never for storage or JSON)."""
from decimal import Decimal

from babel.lists import format_list
from babel.numbers import format_currency, get_currency_precision
from flask import current_app
from flask_babel import format_date, format_datetime, get_locale
from flask_babel import gettext as _


def format_money(minor, currency=None):
    """Format an amount in minor units, e.g. 20000 CNY -> '¥200.00' (exact: no floats)."""
    currency = currency or current_app.config["CURRENCY"]
    amount = Decimal(minor).scaleb(-get_currency_precision(currency))
    return format_currency(amount, currency, locale=str(get_locale()))


# One style of date per language, on every page: (a day, a day and a time). Chinese writes them as
# 2026年11月30日 and 2026年11月30日 14:05; English as 30 Nov 2026 and 30 Nov 2026, 14:05.
DATE_STYLES = {
    "zh": ("yyyy年M月d日", "yyyy年M月d日 HH:mm"),
    "en": ("d MMM yyyy", "d MMM yyyy, HH:mm"),
}


def _style(locale):
    return DATE_STYLES.get(locale.language, DATE_STYLES["en"])


def day(value):
    """A date in the visitor's language: 2026年11月30日, 30 Nov 2026."""
    return format_date(value, _style(get_locale())[0])


def day_range(first, last):
    """Business dates from ``first`` to ``last`` in the one date style: a single day, or 2026年11月1日 至 2026年11月30日."""
    if first == last:
        return day(first)
    return _("%(first)s to %(last)s", first=day(first), last=day(last))


def when(value):
    """A date and time in the visitor's language, in the business time zone: 2026年11月30日 14:05."""
    return format_datetime(value, _style(get_locale())[1])


def one_of(items):
    """Alternatives as the visitor's language lists them: "WeChat Pay or Alipay", "微信支付或支付宝"."""
    return format_list([str(item) for item in items], style="or", locale=str(get_locale()))


def init_app(app):
    """Register the template filters."""
    app.add_template_filter(format_money, "money")
    # Flask-Babel shows datetimes in BABEL_DEFAULT_TIMEZONE, set to the business zone.
    app.add_template_filter(when, "when")
    app.add_template_filter(day, "date")
    app.add_template_global(day_range)
    app.add_template_filter(one_of)
