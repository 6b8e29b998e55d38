"""Formatting money and times for people (never for storage or JSON)."""
from decimal import Decimal

from babel.lists import format_list
from babel.numbers import format_currency, get_currency_precision
from flask import current_app
from flask_babel import format_date, format_datetime, get_locale


def format_money(minor, currency=None):
    """Format an amount in minor units, e.g. 20000 CNY -> '¥200.00' (exact: no floats)."""
    currency = currency or current_app.config["CURRENCY"]
    amount = Decimal(minor).scaleb(-get_currency_precision(currency))
    return format_currency(amount, currency, locale=str(get_locale()))


def when(value):
    """A date and time as drivers in China write them: 2026-11-21 08:15 (business time zone)."""
    return format_datetime(value, "yyyy-MM-dd HH:mm")


def one_of(items):
    """Alternatives as the visitor's language lists them: "WeChat Pay or Alipay", "微信支付或支付宝"."""
    return format_list([str(item) for item in items], style="or", locale=str(get_locale()))


def init_app(app):
    """Register the template filters."""
    app.add_template_filter(format_money, "money")
    # Flask-Babel shows datetimes in BABEL_DEFAULT_TIMEZONE, set to the business zone.
    app.add_template_filter(when, "when")
    app.add_template_filter(format_date, "date")
    app.add_template_filter(one_of)
