"""The sandbox issuer's public verification page: what an e-receipt's numbers say was issued, and if it was cancelled."""
from flask import Blueprint, render_template, request

from finepay.extensions import limiter
from payments.ereceipts import CHECK_CODE_PATTERN, CODE_PATTERN, NUMBER_PATTERN, current_issuer

bp = Blueprint("ereceipts_sandbox", __name__, template_folder="templates")
VERIFY_PATH = "/ereceipts/sandbox/verify"


@bp.get(VERIFY_PATH)
@limiter.limit("60/minute")
def verify():
    """Look an e-receipt up by 票据代码, 票据号码 and 校验码 (as its QR code carries them); 404 when none matches."""
    code, number = request.args.get("code", ""), request.args.get("number", "")
    check = request.args.get("check", "")
    found = None
    if CODE_PATTERN.fullmatch(code) and NUMBER_PATTERN.fullmatch(number) and CHECK_CODE_PATTERN.fullmatch(check):
        found = current_issuer().find(code, number, check)
    ereceipt, red_flushed_at = found or (None, None)
    return render_template("ereceipts_sandbox/verify.html", ereceipt=ereceipt, red_flushed_at=red_flushed_at,
                           code=code, number=number, check=check), 200 if found else 404
