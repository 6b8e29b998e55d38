"""The cases API: file a contest or an application (multipart, with evidence), and check a case."""
from flask import current_app, request
from flask.views import MethodView
from flask_babel import gettext as _
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import CombinedMultiDict

from cases import evidence, services
from cases.schemas import CaseCheckSchema, CaseFilingSchema, CaseStatusSchema, FiledCaseSchema
from finepay.errors import ApiError
from finepay.restapi import Blueprint, BodyParser
from violations.limits import limited
from violations.schemas import ChallengeRequiredSchema
from violations.services import prove_vehicle


class MultipartParser(BodyParser):
    """FinePay's body parser, with one more location: a multipart body's fields and files read as one."""

    __location_map__ = {**BodyParser.__location_map__, "multipart": "load_multipart"}

    def load_multipart(self, req, schema):
        """The form fields and the files of a multipart body together."""
        return MultiDictProxy(CombinedMultiDict([req.form, req.files]), schema)


class CasesBlueprint(Blueprint):
    """The cases API's blueprint: filing is one multipart body (fields and evidence) in the OpenAPI document."""

    ARGUMENTS_PARSER = MultipartParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {**Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
                                             "multipart": "multipart/form-data"}


blp = CasesBlueprint("cases_api", __name__, url_prefix="/api/v1", description="Contest a violation, apply to defer it "
                "or pay it in instalments, and check a case")


@blp.before_request
def upload_limit():
    """Only filing takes evidence: its larger body limit, with a message that says what fits."""
    if request.endpoint != "cases_api.Cases":
        return
    limit = evidence.request_limit(current_app.config)
    request.max_content_length = limit
    if request.content_length and request.content_length > limit:
        config = current_app.config
        raise ApiError(_("The upload is too large: send up to 5 photos of at most %(photo)d MB each, or one video "
                         "of at most %(video)d MB.", photo=config["EVIDENCE_PHOTO_MAX_BYTES"] // (1024 * 1024),
                         video=config["EVIDENCE_VIDEO_MAX_BYTES"] // (1024 * 1024)),
                       code="payload_too_large", status=413)


def no_match():
    """The one answer for every failed proof: an unknown plate, a wrong code, a case that is not this vehicle's."""
    return ApiError(_("No case matches this plate, code and case number. Check all three and try again."),
                    code="not_found", status=404)


@blp.route("/cases")
class Cases(MethodView):
    """File a case."""

    decorators = [limited]

    @blp.arguments(CaseFilingSchema, location="multipart")
    @blp.response(201, FiledCaseSchema)
    @blp.alt_response(404, description="No match: the vehicle is not proven or the violation is not its own")
    @blp.alt_response(409, description="Paid, cancelled, a case already open, or a payment being processed")
    @blp.alt_response(413, description="The whole upload is over the limit")
    @blp.alt_response(422, description="A field or a file breaks a rule (errors name it)")
    @blp.alt_response(429, schema=ChallengeRequiredSchema, description=ChallengeRequiredSchema.DESCRIPTION)
    def post(self, filing):
        """Contest a violation, or apply to defer it or pay it in instalments, with evidence files."""
        altcha = filing.pop("altcha", None)
        if prove_vehicle(filing["plate"], vin_last6=filing["vin_last6"], violation_ids=[filing["violation_id"]],
                         altcha=altcha) is None:
            raise ApiError(_("No violations match this plate and code. Check both and try again."),
                           code="not_found", status=404)
        return services.file_case(violation_id=filing["violation_id"], kind=filing["kind"], reason=filing["reason"],
                                  statement=filing["statement"], uploads=filing["evidence"], actor="driver",
                                  channel="api")


@blp.route("/cases/check")
class CaseCheck(MethodView):
    """Check a case."""

    decorators = [limited]

    @blp.arguments(CaseCheckSchema)
    @blp.response(200, CaseStatusSchema)
    @blp.alt_response(404, description="No match (the same body whatever was wrong)")
    @blp.alt_response(429, schema=ChallengeRequiredSchema, description=ChallengeRequiredSchema.DESCRIPTION)
    def post(self, proof):
        """A case's status and outcome, for the vehicle (plate + VIN code) it concerns."""
        status = services.check_case(proof["plate"], proof["vin_last6"], proof["case_number"],
                                     altcha=proof.get("altcha"))
        if status is None:
            raise no_match()
        return status
