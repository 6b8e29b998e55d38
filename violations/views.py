"""Driver pages: the lookup form and the vehicle's violations."""
from flask import Blueprint, render_template, request
from flask_wtf.csrf import CSRFError

from finepay.challenge import ChallengeRequired
from violations.forms import LookupForm
from violations.limits import limited
from violations.proof import sign_vehicle
from violations.services import prove_vehicle

bp = Blueprint("violations", __name__)


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
    try:
        statement = prove_vehicle(**form.proof_arguments(), altcha=form.altcha.data)
    except ChallengeRequired as needed:
        # The same form, filled in, with the challenge: the browser solves it and sends the form again.
        return render_template("violations/home.html", form=form, challenge=needed), 429
    if statement is None:
        return render_template("violations/home.html", form=form, no_match=True), 404
    return render_template("violations/results.html", statement=statement,
                           vehicle_token=sign_vehicle(statement.plate, statement.vin_last6))



@bp.errorhandler(CSRFError)
def csrf_expired(error):
    """A stale or missing form token: show the form again, never a bare error page."""
    return render_template("violations/home.html", form=LookupForm(formdata=None), csrf_expired=True), 400
