"""Alipay's RSA signatures: the string each side signs, RSA2 (SHA256withRSA) or RSA (SHA1withRSA), and the JSON it answers.

Requests are signed over every parameter but ``sign`` (``sign_type`` included), sorted by
name, ``name=value`` joined by ``&``, empty values left out. Notifications and the mobile
cashier's return parameters are signed the same way without ``sign`` and ``sign_type``. A
gateway answer is signed over the exact text of its ``<method>_response`` object.
"""
import base64
import binascii
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

SIGN_TYPES = {"RSA2": hashes.SHA256, "RSA": hashes.SHA1}
REQUEST_UNSIGNED = ("sign",)
NOTIFICATION_UNSIGNED = ("sign", "sign_type")


def sign_content(params, unsigned):
    """The string a party signs: the sorted ``name=value`` pairs, without ``unsigned`` names and empty values."""
    return "&".join(f"{name}={value}" for name, value in sorted(params.items())
                    if name not in unsigned and value not in (None, ""))


def sign(private_key, content, sign_type="RSA2"):
    """Base64 of the PKCS#1 v1.5 signature of ``content`` (UTF-8) under ``sign_type``'s digest."""
    signature = private_key.sign(content.encode("utf-8"), padding.PKCS1v15(), SIGN_TYPES[sign_type]())
    return base64.b64encode(signature).decode("ascii")


def verify(public_key, content, signature, sign_type="RSA2"):
    """Whether ``signature`` (base64) signs ``content`` under ``public_key``."""
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), SIGN_TYPES[sign_type]())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def response_text(payload):
    """A response object as Alipay writes it: compact JSON, non-ASCII as is, and ``/`` escaped as ``\\/``."""
    # Escaping "/" is safe anywhere in JSON text: outside strings it never occurs.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")


def response_body(key, payload, private_key=None, sign_type="RSA2"):
    """``{"<key>":{...},"sign":"..."}``, the signature over the object's exact text; unsigned without a key."""
    text = response_text(payload)
    if private_key is None:
        return f'{{"{key}":{text}}}'
    return f'{{"{key}":{text},"sign":"{sign(private_key, text, sign_type)}"}}'
