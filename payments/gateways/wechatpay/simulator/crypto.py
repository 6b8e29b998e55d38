"""The API v3 primitives the simulator speaks: RSA-SHA256 signatures, AEAD_AES_256_GCM and the Authorization header.

Everything is built on ``cryptography``, the same library the clients use, so
that a signature or ciphertext the simulator makes is checked by the client's
own code and not by a second reading of the documents.
"""
import base64
import re
import secrets
import string

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256

SCHEME = "WECHATPAY2-SHA256-RSA2048"
_ALPHANUMERIC = string.ascii_letters + string.digits
# mchid="1900000001",nonce_str="...",signature="...",timestamp="...",serial_no="..."
_AUTH_PARAM = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*(?:,|$)')


def nonce(length=32):
    """A random string of letters and digits, as WeChat Pay's nonces and AES-GCM nonces are."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def sign(private_key, message):
    """Base64 of the SHA256-with-RSA (PKCS#1 v1.5) signature of ``message``."""
    return base64.b64encode(private_key.sign(message.encode(), PKCS1v15(), SHA256())).decode()


def verify(public_key, message, signature):
    """Whether ``signature`` (base64) is ``public_key``'s signature of ``message``."""
    try:
        public_key.verify(base64.b64decode(signature, validate=True), message.encode(), PKCS1v15(), SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def parse_authorization(header):
    """The parameters of an API v3 Authorization header, or None when it is not one."""
    scheme, _, rest = (header or "").partition(" ")
    if scheme != SCHEME:
        return None
    params = dict(_AUTH_PARAM.findall(rest))
    if not {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} <= params.keys():
        return None
    return params


def request_message(method, url, timestamp, nonce_str, body):
    """What a merchant signs: method, the URL's path and query as sent, timestamp, nonce and body, one a line."""
    return f"{method}\n{url}\n{timestamp}\n{nonce_str}\n{body}\n"


def response_message(timestamp, nonce_str, body):
    """What WeChat Pay signs on a response or a notification: timestamp, nonce and body, one a line."""
    return f"{timestamp}\n{nonce_str}\n{body}\n"


def encrypt_resource(apiv3_key, plaintext, associated_data):
    """An AEAD_AES_256_GCM resource as notifications and /v3/certificates carry it (the APIv3 key is the AES key)."""
    nonce_str = nonce(12)
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce_str.encode(), plaintext.encode(), associated_data.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(ciphertext).decode(),
            "nonce": nonce_str, "associated_data": associated_data}

