"""The simulated merchant account: its ids, its keys and WeChat Pay's own keys, made once in the data directory.

A real merchant gets from WeChat Pay a merchant id, an app id (the official
account's), an API certificate whose private key signs its requests, an APIv3
key for the AES-GCM resources, and either platform certificates (fetched from
/v3/certificates) or, since 2024, a platform public key with an id
``PUB_KEY_ID_...``. The simulator makes all of them on first start and keeps
them, so that a client configured once keeps working across restarts.
"""
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .crypto import nonce

MERCHANT_KEY = "merchant_private_key.pem"
MERCHANT_CERT = "merchant_cert.pem"
PLATFORM_CERT_KEY = "platform_cert_private_key.pem"
PLATFORM_CERT = "platform_cert.pem"
PLATFORM_PUBLIC_KEY_PRIVATE = "platform_public_key_private.pem"
PLATFORM_PUBLIC_KEY = "platform_public_key.pem"
# wechatpayv3's cert_dir: the platform certificates it may load instead of fetching /v3/certificates
PLATFORM_CERT_DIR = "platform_certs"
ACCOUNT = "account.json"
CERT_DAYS = 5 * 365


@dataclass
class Account:
    """The ids and keys of the one merchant the simulator serves, and WeChat Pay's keys that sign for it."""

    data_dir: Path
    mchid: str
    appid: str
    app_secret: str
    apiv3_key: str
    merchant_name: str
    merchant_serial: str
    platform_serial: str
    platform_public_key_id: str
    merchant_private_key: object
    platform_cert_private_key: object
    platform_public_key_private: object
    platform_cert_pem: str

    @property
    def merchant_public_key(self):
        """What checks a merchant's request signature (the public key of its API certificate)."""
        return self.merchant_private_key.public_key()

    def signer(self, mode):
        """(private key, Wechatpay-Serial) that sign responses and notifications in ``mode``: public-key or certificate."""
        if mode == "certificate":
            return self.platform_cert_private_key, self.platform_serial
        return self.platform_public_key_private, self.platform_public_key_id

    def path(self, name):
        """The absolute path of one of the account's files."""
        return str((self.data_dir / name).resolve())

    def config(self, base_url, signing):
        """Everything a client needs to talk to this simulator, as ``--print-config`` prints it."""
        return {
            "base_url": base_url,
            "mchid": self.mchid,
            "appid": self.appid,
            "app_secret": self.app_secret,
            "merchant_name": self.merchant_name,
            "merchant_serial": self.merchant_serial,
            "merchant_private_key_path": self.path(MERCHANT_KEY),
            "apiv3_key": self.apiv3_key,
            "signing": signing,
            "platform_public_key_id": self.platform_public_key_id,
            "platform_public_key_path": self.path(PLATFORM_PUBLIC_KEY),
            "platform_serial": self.platform_serial,
            "platform_cert_path": self.path(PLATFORM_CERT),
            "platform_cert_dir": self.path(PLATFORM_CERT_DIR),
            "certificates_url": base_url + "/v3/certificates",
            "oauth_authorize_url": base_url + "/connect/oauth2/authorize",
            "oauth_access_token_url": base_url + "/sns/oauth2/access_token",
            "scan_url": base_url + "/simulator/scan",
            "jsbridge_url": base_url + "/simulator/jsbridge.js",
            "admin_url": base_url + "/simulator/admin",
        }


def load_or_create(data_dir):
    """The account kept in ``data_dir``, made there (keys, certificates, ids) on first use."""
    data_dir = Path(data_dir)
    if not (data_dir / ACCOUNT).exists():
        _create(data_dir)
    ids = json.loads((data_dir / ACCOUNT).read_text())
    return Account(
        data_dir=data_dir,
        merchant_private_key=_load_private(data_dir / MERCHANT_KEY),
        platform_cert_private_key=_load_private(data_dir / PLATFORM_CERT_KEY),
        platform_public_key_private=_load_private(data_dir / PLATFORM_PUBLIC_KEY_PRIVATE),
        platform_cert_pem=(data_dir / PLATFORM_CERT).read_text(),
        **ids,
    )


def _create(data_dir):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / PLATFORM_CERT_DIR).mkdir(exist_ok=True)
    merchant_key, platform_cert_key, platform_key = (_new_key() for _ in range(3))
    merchant_cert = _certificate(merchant_key, "FinePay simulated merchant")
    platform_cert = _certificate(platform_cert_key, "Tenpay.com Root CA (simulated)")
    platform_serial = format(platform_cert.serial_number, "X")
    _write(data_dir / MERCHANT_KEY, _private_pem(merchant_key))
    _write(data_dir / MERCHANT_CERT, merchant_cert.public_bytes(serialization.Encoding.PEM))
    _write(data_dir / PLATFORM_CERT_KEY, _private_pem(platform_cert_key))
    _write(data_dir / PLATFORM_CERT, platform_cert.public_bytes(serialization.Encoding.PEM))
    _write(data_dir / PLATFORM_CERT_DIR / f"{platform_serial}.pem", platform_cert.public_bytes(serialization.Encoding.PEM))
    _write(data_dir / PLATFORM_PUBLIC_KEY_PRIVATE, _private_pem(platform_key))
    _write(data_dir / PLATFORM_PUBLIC_KEY, platform_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    ids = {
        "mchid": "19" + "".join(secrets.choice("0123456789") for _ in range(8)),
        "appid": "wx" + secrets.token_hex(8),
        "app_secret": secrets.token_hex(16),
        "apiv3_key": nonce(32),
        "merchant_name": "FinePay 交通罚款缴纳（模拟商户）",
        "merchant_serial": format(merchant_cert.serial_number, "X"),
        "platform_serial": platform_serial,
        "platform_public_key_id": "PUB_KEY_ID_" + "".join(secrets.choice("0123456789") for _ in range(32)),
    }
    # written last: its presence says the directory is complete
    _write(data_dir / ACCOUNT, json.dumps(ids, ensure_ascii=False, indent=2).encode())


def _new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(key, common_name):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=CERT_DAYS)).sign(key, hashes.SHA256()))


def _private_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path, data):
    """Write a file readable by its owner only: these are private keys and secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _load_private(path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)
