"""Server-rendered SVG charts: no scripts, no external assets, readable without colour."""
from flask_babel import gettext as _
from markupsafe import Markup, escape

from finepay.formatting import format_money

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 16, 40
LEDGER_FILL, GATEWAY_FILL = "#0b5cad", "#e0a030"


# The axis has four equal steps; each is one of these times a power of ten (minor units), and at least EMPTY_STEP,
# so that an empty or nearly empty day still reads 0 to a round amount (¥100) rather than fractions of a fen.
STEPS = (1, 2, 2.5, 5)
GRIDLINES = 4
EMPTY_STEP = 2500


def axis_top(value):
    """The top of the axis for bars up to ``value`` (minor units): four round steps, never zero."""
    needed = max(value / GRIDLINES, EMPTY_STEP)
    magnitude = 1
    while True:
        for step in STEPS:
            if step * magnitude >= needed:
                return int(step * magnitude * GRIDLINES)
        magnitude *= 10


def hourly_chart(hourly, currency, title):
    """Bars per hour of the business day: the ledger's settled amount beside the gateway's charged amount.

    ``hourly`` is 24 pairs of Totals (ledger, gateway). Every bar has a
    <title> (shown on hover and read by screen readers); the page also has the
    numbers as a table.
    """
    highest = max([max(ledger.amount, gateway.amount) for ledger, gateway in hourly] + [0])
    top = axis_top(highest)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / 24
    bar = slot * 0.38
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title" class="chart" id="hourly-chart">',
        f'<title id="chart-title">{escape(title)}</title>',
    ]
    for i in range(GRIDLINES + 1):  # gridlines and axis labels
        value = top * i // GRIDLINES
        y = TOP + plot_h - plot_h * i / GRIDLINES
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#c9d1db" '
                     f'stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#4a5360">'
                     f'{escape(format_money(value, currency))}</text>')
    names = {"ledger": _("ledger"), "gateway": _("gateway")}
    # f-strings hide their calls from pybabel: the words are looked up here.
    legend = {"ledger": _("Ledger (settled)"), "gateway": _("Gateway (charged)"), "hours": _("hour of the business day"),
              "empty": _("Nothing settled or charged on these dates")}
    for hour, (ledger, gateway) in enumerate(hourly):
        x = LEFT + hour * slot + slot * 0.1
        for offset, totals, fill, who in ((0, ledger, LEDGER_FILL, "ledger"), (bar, gateway, GATEWAY_FILL, "gateway")):
            height = plot_h * totals.amount / top
            y = TOP + plot_h - height
            label = f"{hour:02d}:00 {names[who]}: {format_money(totals.amount, currency)} ({totals.count})"
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" fill="{fill}" '
                f'class="bar-{who}"><title>{escape(label)}</title></rect>'
            )
        if hour % 3 == 0:
            parts.append(f'<text x="{x + bar:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
                         f'fill="#4a5360">{hour:02d}</text>')
    if not highest:
        parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
                     f'font-size="14" fill="#4a5360" class="chart-empty">{escape(legend["empty"])}</text>')
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
