"""The merchant's keys for WeChat Pay, read from the files its settings name and checked before the app starts.

Every message names the setting at fault and never the key, so that a refused
start-up can be logged as it is.
"""
import os
import re
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from finepay.settings import SettingsError

PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"
APIV3_KEY_BYTES = 32  # AEAD_AES_256_GCM takes the APIv3 key's 32 bytes as they are
_MCHID = re.compile(r"[0-9]{6,32}")
_SERIAL = re.compile(r"[0-9A-Fa-f]{8,64}")


@dataclass(frozen=True)
class Credentials:
    """What wechatpayv3 needs to sign requests and to verify and decrypt what WeChat Pay sends."""

    mchid: str
    appid: str
    cert_serial: str
    private_key: str = field(repr=False)  # PEM text
    apiv3_key: str = field(repr=False)
    public_key: str | None = field(default=None, repr=False)  # public key mode: the platform's key (PEM)
    public_key_id: str | None = None
    cert_dir: str | None = None  # certificate mode: platform certificates kept here, fetched when missing


def load_credentials(config):
    """The merchant's credentials from ``config``; SettingsError naming the setting when one is missing or malformed."""
    mchid = _required(config, "WECHATPAY_MCHID")
    if not _MCHID.fullmatch(mchid):
        raise SettingsError("WECHATPAY_MCHID must be the merchant id WeChat Pay gave (digits only)")
    serial = _required(config, "WECHATPAY_CERT_SERIAL")
    if not _SERIAL.fullmatch(serial):
        raise SettingsError("WECHATPAY_CERT_SERIAL must be the hexadecimal serial of the merchant's API certificate")
    private_key = _read_pem(config, "WECHATPAY_PRIVATE_KEY_FILE")
    try:
        loaded = load_pem_private_key(private_key.encode("ascii"), password=None)
    except (ValueError, TypeError):
        raise SettingsError("WECHATPAY_PRIVATE_KEY_FILE does not hold an unencrypted PEM private key") from None
    if not isinstance(loaded, RSAPrivateKey) or loaded.key_size < 2048:
        raise SettingsError("WECHATPAY_PRIVATE_KEY_FILE must hold an RSA private key of at least 2048 bits")
    # wechatpayv3 reads PKCS#8 only ("BEGIN PRIVATE KEY"); a PKCS#1 file is as good once converted.
    private_key = loaded.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode("ascii")
    public_key, public_key_id, cert_dir = _platform(config)
    return Credentials(
        mchid=mchid, appid=_required(config, "WECHATPAY_APPID"), cert_serial=serial.upper(), private_key=private_key,
        apiv3_key=_apiv3_key(config), public_key=public_key, public_key_id=public_key_id, cert_dir=cert_dir,
    )


def _platform(config):
    """How WeChat Pay's signatures are checked: its public key (with its id), or its certificates in a directory."""
    key_file, key_id = config.get("WECHATPAY_PUBLIC_KEY_FILE"), config.get("WECHATPAY_PUBLIC_KEY_ID")
    if key_file or key_id:
        if not key_id or not key_id.startswith(PUBLIC_KEY_ID_PREFIX):
            raise SettingsError(f"WECHATPAY_PUBLIC_KEY_ID must be the platform public key's id ({PUBLIC_KEY_ID_PREFIX}...)")
        public_key = _read_pem(config, "WECHATPAY_PUBLIC_KEY_FILE")
        try:
            loaded = load_pem_public_key(public_key.encode("ascii"))
        except (ValueError, TypeError):
            raise SettingsError("WECHATPAY_PUBLIC_KEY_FILE does not hold a PEM public key") from None
        if not isinstance(loaded, RSAPublicKey):
            raise SettingsError("WECHATPAY_PUBLIC_KEY_FILE must hold WeChat Pay's RSA public key")
        return loaded.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii"), key_id, None
    cert_dir = config.get("WECHATPAY_CERT_DIR")
    if not cert_dir:
        raise SettingsError("WeChat Pay needs WECHATPAY_PUBLIC_KEY_FILE and WECHATPAY_PUBLIC_KEY_ID "
                            "(public key mode) or WECHATPAY_CERT_DIR (platform certificates)")
    if os.path.exists(cert_dir) and not os.path.isdir(cert_dir):
        raise SettingsError("WECHATPAY_CERT_DIR must name a directory")
    return None, None, cert_dir


def _apiv3_key(config):
    key = config.get("WECHATPAY_APIV3_KEY") or ""
    name = "WECHATPAY_APIV3_KEY"
    if not key and config.get("WECHATPAY_APIV3_KEY_FILE"):
        name = "WECHATPAY_APIV3_KEY_FILE"
        key = _read(config, name).strip()
    if not key:
        raise SettingsError("WECHATPAY_APIV3_KEY (or WECHATPAY_APIV3_KEY_FILE) is not set")
    if not key.isascii() or len(key) != APIV3_KEY_BYTES:
        raise SettingsError(f"{name} must be the {APIV3_KEY_BYTES}-character APIv3 key set in the merchant platform")
    return key


def _required(config, name):
    value = (config.get(name) or "").strip()
    if not value:
        raise SettingsError(f"{name} is not set")
    return value


def _read(config, name):
    path = _required(config, name)
    try:
        with open(path, encoding="ascii") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{name} names a file that cannot be read ({type(exc).__name__})") from None


def _read_pem(config, name):
    text = _read(config, name)
    if "-----BEGIN" not in text:
        raise SettingsError(f"{name} does not hold a PEM key")
    return text
