"""WeChat Pay's error answers: an HTTP status and {"code": ..., "message": ...} (PARAM_ERROR adds "detail")."""


class ApiError(Exception):
    """An error WeChat Pay answers with, in its own shape."""

    def __init__(self, status, code, message, detail=None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail

    def body(self):
        """The JSON body WeChat Pay sends with this error."""
        body = {"code": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body


def param_error(field, message, location="body"):
    """400 PARAM_ERROR about one field, with the detail WeChat Pay gives (where the bad value was)."""
    return ApiError(400, "PARAM_ERROR", message, {"field": field, "location": location})


def invalid_request(message):
    """400 INVALID_REQUEST: well-formed, but not allowed in the order's or refund's present state."""
    return ApiError(400, "INVALID_REQUEST", message)


def sign_error(message="错误的签名，验签失败"):
    """401 SIGN_ERROR: the Authorization header is missing, malformed or does not verify."""
    return ApiError(401, "SIGN_ERROR", message)


def _fixed(status, code, message):
    """A maker of one fixed error (a fresh exception each time: one instance raised in two threads shares a traceback)."""
    return lambda: ApiError(status, code, message)


ORDER_NOT_EXIST = _fixed(404, "ORDER_NOT_EXIST", "订单不存在")
REFUND_NOT_EXIST = _fixed(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
TRADE_NOT_EXIST = _fixed(404, "RESOURCE_NOT_EXISTS", "订单不存在")
ORDERPAID = _fixed(403, "ORDERPAID", "该订单已支付")
ORDER_CLOSED = _fixed(400, "ORDER_CLOSED", "该订单已关闭")
OUT_TRADE_NO_USED = _fixed(403, "OUT_TRADE_NO_USED", "商户订单号重复")
APPID_MCHID_NOT_MATCH = _fixed(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
MCH_NOT_EXISTS = _fixed(400, "MCH_NOT_EXISTS", "商户号不存在")
# the fault switches' errors
SYSTEM_ERROR = _fixed(500, "SYSTEM_ERROR", "系统错误")
FREQUENCY_LIMITED = _fixed(429, "FREQUENCY_LIMITED", "频率超限")
NOT_ENOUGH = _fixed(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")
# the bill before it is out
NO_STATEMENT_EXIST = _fixed(400, "NO_STATEMENT_EXIST", "账单文件不存在")
STATEMENT_CREATING = _fixed(400, "STATEMENT_CREATING", "账单生成中")
