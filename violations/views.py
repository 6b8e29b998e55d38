"""Driver pages: the lookup form and the vehicle's violations."""
from flask import Blueprint, render_template, request
from flask_wtf.csrf import CSRFError

from violations.forms import LookupForm
from violations.limits import lookup_limits
from violations.proof import sign_vehicle
from violations.services import lookup_vehicle

bp = Blueprint("violations", __name__)


def limited(view):
    """Apply the lookup rate limits (shared with the API) to a view."""
    for decorate in lookup_limits():
        view = decorate(view)
    return view


@bp.get("/")
def home():
    """The lookup form."""
    return render_template("violations/home.html", form=LookupForm())


@bp.post("/lookup")
@limited
def lookup():
    """Show a vehicle's violations. POST only: plates and VIN codes never go in a URL."""
    # Form fields only: Flask-WTF would otherwise also take a JSON body or files.
    form = LookupForm(formdata=request.form)
    if not form.validate_on_submit():
        return render_template("violations/home.html", form=form), 422
    statement = lookup_vehicle(**form.proof_arguments())
    if statement is None:
        return render_template("violations/home.html", form=form, no_match=True), 404
    return render_template("violations/results.html", statement=statement,
                           vehicle_token=sign_vehicle(statement.plate, statement.vin_last6))



@bp.errorhandler(CSRFError)
def csrf_expired(error):
    """A stale or missing form token: show the form again, never a bare error page."""
    return render_template("violations/home.html", form=LookupForm(formdata=None), csrf_expired=True), 400
