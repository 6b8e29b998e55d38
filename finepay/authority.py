"""Whose service this is: the collecting authority's name, emblem, hotline and registrations, for every page.

The settings (finepay.settings.DEMO_AUTHORITY) are read once; templates get
them as ``authority`` from a context processor, so the header, the footer,
the kiosk and every receipt name the same payee.
"""
import os
from dataclasses import dataclass

from flask import current_app, url_for

from finepay.settings import SettingsError

# The emblem is shown with <img>: only image types a browser will not run as a page of its own.
EMBLEM_TYPES = (".svg", ".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class Authority:
    """The collecting authority as pages show it."""

    name: str
    emblem: str
    hotline: str
    icp_record: str
    psb_record: str
    hall_address: str
    hall_hours: str

    @property
    def emblem_url(self):
        """The emblem's address on this site, or None when the deployment has none."""
        return url_for("static", filename=self.emblem) if self.emblem else None


def check_emblem(config, static_folder):
    """Refuse an emblem that is not an image file inside static/: it is served by FinePay itself, like its CSS.

    A remote address is refused too: the kiosk's and console's policies load images from this site only.
    """
    emblem = config["AUTHORITY_EMBLEM"]
    if not emblem:
        return
    path = os.path.normpath(os.path.join(static_folder, emblem))
    inside = not os.path.isabs(emblem) and ".." not in emblem.split("/") and path.startswith(static_folder + os.sep)
    if not (inside and emblem.lower().endswith(EMBLEM_TYPES) and os.path.isfile(path)):
        raise SettingsError(
            f"AUTHORITY_EMBLEM must name an image file ({', '.join(EMBLEM_TYPES)}) under static/, got {emblem!r}"
        )


def current_authority():
    """The running app's authority."""
    config = current_app.config
    return Authority(
        name=config["AUTHORITY_NAME"], emblem=config["AUTHORITY_EMBLEM"], hotline=config["SERVICE_HOTLINE"],
        icp_record=config["ICP_RECORD"], psb_record=config["PSB_RECORD"],
        hall_address=config["SERVICE_HALL_ADDRESS"], hall_hours=config["SERVICE_HALL_HOURS"],
    )


def init_app(app):
    """Check the emblem and give every template ``authority``."""
    check_emblem(app.config, app.static_folder)
    app.context_processor(lambda: {"authority": current_authority()})
