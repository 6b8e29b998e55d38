"""Server-rendered SVG charts: no scripts, no external assets, readable without colour."""
from flask_babel import gettext as _
from markupsafe import Markup, escape

from finepay.formatting import format_money

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 16, 40
LEDGER_FILL, GATEWAY_FILL = "#0b5cad", "#e0a030"


def _nice_ceiling(value):
    """A round number at or above value, for the top of the axis."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return int(10 * magnitude)


def hourly_chart(hourly, currency, title):
    """Bars per hour of the business day: the ledger's settled amount beside the gateway's charged amount.

    ``hourly`` is 24 pairs of Totals (ledger, gateway). Every bar has a
    <title> (shown on hover and read by screen readers); the page also has the
    numbers as a table.
    """
    top = _nice_ceiling(max([max(ledger.amount, gateway.amount) for ledger, gateway in hourly] + [0]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / 24
    bar = slot * 0.38
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title" class="chart" id="hourly-chart">',
        f'<title id="chart-title">{escape(title)}</title>',
    ]
    for i in range(5):  # gridlines and axis labels
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#c9d1db" '
                     f'stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#4a5360">'
                     f'{escape(format_money(int(value), currency))}</text>')
    names = {"ledger": _("ledger"), "gateway": _("gateway")}
    # f-strings hide their calls from pybabel: the words are looked up here.
    legend = {"ledger": _("Ledger (settled)"), "gateway": _("Gateway (charged)"), "hours": _("hour of the business day")}
    for hour, (ledger, gateway) in enumerate(hourly):
        x = LEFT + hour * slot + slot * 0.1
        for offset, totals, fill, who in ((0, ledger, LEDGER_FILL, "ledger"), (bar, gateway, GATEWAY_FILL, "gateway")):
            height = plot_h * totals.amount / top if top else 0
            y = TOP + plot_h - height
            label = f"{hour:02d}:00 {names[who]}: {format_money(totals.amount, currency)} ({totals.count})"
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" fill="{fill}" '
                f'class="bar-{who}"><title>{escape(label)}</title></rect>'
            )
        if hour % 3 == 0:
            parts.append(f'<text x="{x + bar:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
                         f'fill="#4a5360">{hour:02d}</text>')
    legend_y = HEIGHT - 8
    parts += [
        f'<rect x="{LEFT}" y="{legend_y - 10}" width="12" height="12" fill="{LEDGER_FILL}"/>',
        f'<text x="{LEFT + 18}" y="{legend_y}" font-size="12" fill="#1b1f24">{escape(legend["ledger"])}</text>',
        f'<rect x="{LEFT + 150}" y="{legend_y - 10}" width="12" height="12" fill="{GATEWAY_FILL}"/>',
        f'<text x="{LEFT + 168}" y="{legend_y}" font-size="12" fill="#1b1f24">{escape(legend["gateway"])}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{legend_y}" font-size="12" text-anchor="end" fill="#4a5360">'
        f'{escape(legend["hours"])}</text>',
        "</svg>",
    ]
    return Markup("".join(parts))
