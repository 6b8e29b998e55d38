"""The API v3 endpoints: every request's signature checked, every answer signed, errors in WeChat Pay's shape."""
import hashlib
import json
import time

from flask import Blueprint, Response, current_app, g, request

from . import errors
from .clock import rfc3339
from .crypto import encrypt_resource, nonce, parse_authorization, request_message, response_message, sign, verify

bp = Blueprint("api", __name__, url_prefix="/v3")
# WeChat Pay refuses a request whose timestamp is this far (seconds) from its own clock
TIMESTAMP_TOLERANCE = 300
# the bill file is a download, not an API answer: WeChat Pay does not sign it
UNSIGNED = ("/v3/billdownload/",)


def simulator():
    """The running simulator (account, trading, bills, faults, settings)."""
    return current_app.extensions["wechatpay_simulator"]


def json_response(body, status=200):
    """A JSON answer as WeChat Pay writes it: compact, UTF-8, Chinese left as it is."""
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status,
                    content_type="application/json; charset=utf-8")


@bp.errorhandler(errors.ApiError)
def api_error(error):
    """An ApiError in WeChat Pay's shape (signed like every answer)."""
    return json_response(error.body(), error.status)


@bp.before_request
def faults_then_signature():
    """Apply an armed fault, then refuse a request whose Authorization does not verify."""
    fault = simulator().faults.take(request.path)
    if fault and fault["kind"] == "timeout":
        time.sleep(fault["seconds"])
    elif fault and fault["kind"] == "bill_hash_mismatch":
        g.bill_hash_mismatch = True
    elif fault and fault["after"]:
        g.fault_after = fault
    elif fault:
        raise simulator().faults.error(fault)
    check_signature()


def check_signature():
    """Check the Authorization header as WeChat Pay does: scheme, merchant, serial, timestamp, signature."""
    account = simulator().account
    params = parse_authorization(request.headers.get("Authorization"))
    if params is None:
        raise errors.sign_error("Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》")
    if params["mchid"] != account.mchid:
        raise errors.sign_error("Http头Authorization中的mchid与证书不匹配")
    if params["serial_no"].upper() != account.merchant_serial:
        raise errors.sign_error("商户证书序列号有误。请使用签名私钥匹配的证书序列号")
    if not params["timestamp"].isdigit() or abs(time.time() - int(params["timestamp"])) > TIMESTAMP_TOLERANCE:
        raise errors.sign_error("Http头Authorization中的timestamp与当前时间相差过大")
    # the URL exactly as the client sent it (path and query, not decoded), as it signed it
    url = request.environ.get("RAW_URI") or request.full_path.rstrip("?")
    message = request_message(request.method, url, params["timestamp"], params["nonce_str"],
                              request.get_data(as_text=True))
    if not verify(account.merchant_public_key, message, params["signature"]):
        raise errors.sign_error()


@bp.after_request
def signed(response):
    """Sign the answer with the platform key of the configured mode (certificate or public key)."""
    fault = g.pop("fault_after", None)
    if fault and 200 <= response.status_code < 300:
        error = simulator().faults.error(fault)
        response = json_response(error.body(), error.status)
    response.headers["Request-ID"] = nonce(24)
    if request.path.startswith(UNSIGNED):
        return response
    private_key, serial = simulator().account.signer(simulator().settings["signing"])
    timestamp, nonce_str = str(int(time.time())), nonce()
    response.headers.update({
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce_str,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        "Wechatpay-Signature": sign(private_key, response_message(timestamp, nonce_str,
                                                                  response.get_data(as_text=True))),
    })
    return response


def body():
    """The request's JSON object, or PARAM_ERROR."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise errors.ApiError(400, "PARAM_ERROR", "请求体不是合法的JSON对象")
    return data


@bp.post("/pay/transactions/<any(native, jsapi, h5):kind>")
def place_order(kind):
    """Place a Native, JSAPI or H5 order."""
    return json_response(simulator().trading.place(kind, body()))


@bp.get("/pay/transactions/out-trade-no/<out_trade_no>")
def query_order(out_trade_no):
    """Query an order by the merchant's order number."""
    return json_response(simulator().trading.query(out_trade_no, request.args.get("mchid")))


@bp.get("/pay/transactions/id/<transaction_id>")
def query_paid_order(transaction_id):
    """Query a paid order by WeChat Pay's transaction id."""
    return json_response(simulator().trading.query_paid(transaction_id, request.args.get("mchid")))


@bp.post("/pay/transactions/out-trade-no/<out_trade_no>/close")
def close_order(out_trade_no):
    """Close an unpaid order: 204, no body."""
    simulator().trading.close(out_trade_no, body())
    return Response(status=204)


@bp.post("/refund/domestic/refunds")
def create_refund():
    """Ask for a domestic refund."""
    return json_response(simulator().trading.refund(body()))


@bp.get("/refund/domestic/refunds/<out_refund_no>")
def query_refund(out_refund_no):
    """Query a refund by the merchant's refund number."""
    return json_response(simulator().trading.query_refund(out_refund_no))


@bp.get("/certificates")
def certificates():
    """The platform certificate, encrypted with the APIv3 key (the key proves the merchant can read it)."""
    account = simulator().account
    certificate = simulator().platform_certificate
    return json_response({"data": [{
        "serial_no": account.platform_serial,
        "effective_time": rfc3339(certificate.not_valid_before_utc),
        "expire_time": rfc3339(certificate.not_valid_after_utc),
        "encrypt_certificate": encrypt_resource(account.apiv3_key, account.platform_cert_pem, "certificate"),
    }]})


@bp.get("/bill/tradebill")
def trade_bill():
    """Apply for a day's trade bill: where to download it and its SHA1."""
    args = request.args
    answer = simulator().bills.apply(args.get("bill_date"), args.get("bill_type", "ALL"), args.get("tar_type"))
    if g.pop("bill_hash_mismatch", False):  # a SHA1 all the same, of other bytes than the bill's
        answer["hash_value"] = hashlib.sha1(answer["hash_value"].encode()).hexdigest()
    return json_response(answer)


@bp.get("/billdownload/file")
def download_bill():
    """The bill file behind a download_url (not signed, as at WeChat Pay)."""
    content = simulator().bills.download(request.args.get("token", ""))
    if content is None:
        raise errors.ApiError(400, "INVALID_REQUEST", "下载链接已过期或无效，请重新申请账单")
    return Response(content, content_type="application/octet-stream")
