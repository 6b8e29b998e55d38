"""The simulated merchant's account in its data directory: the app's and Alipay's key pairs and the ids.

On first start the simulator makes, as the Alipay open platform would for a new app:
the app's RSA key pair (its private key is the merchant's, for the client; the
simulator keeps its public key to verify requests), Alipay's own key pair (its public
key is handed to clients to verify answers and notifications), an app id and the
seller's partner id (``2088`` and twelve digits). Later starts read them back.
"""
import json
import secrets
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ACCOUNT_FILE = "account.json"
APP_PRIVATE_KEY = "app_private_key.pem"
APP_PUBLIC_KEY = "app_public_key.pem"
ALIPAY_PRIVATE_KEY = "alipay_private_key.pem"
ALIPAY_PUBLIC_KEY = "alipay_public_key.pem"
# Alipay's standard rate for face-to-face and mobile web payments: 0.6 % of each trade.
DEFAULT_FEE_RATE = "0.006"


@dataclass(frozen=True)
class Account:
    """The merchant as the simulator knows it: ids, keys it verifies and signs with, and its fee rate."""

    data_dir: Path
    app_id: str
    seller_id: str
    seller_email: str
    fee_rate: Decimal
    app_public_key: object
    alipay_private_key: object

    @property
    def bill_account(self):
        """The account number Alipay prints on the merchant's bills: the partner id and ``0156`` (CNY)."""
        return f"{self.seller_id}0156"

    def client_config(self, port):
        """Everything an outside client needs to talk to the simulator on ``port``, as ``--print-config`` prints it."""
        base = f"http://127.0.0.1:{port}"
        return {
            "gateway_url": f"{base}/gateway.do",
            "app_id": self.app_id,
            "app_private_key_path": str(self.data_dir / APP_PRIVATE_KEY),
            "alipay_public_key_path": str(self.data_dir / ALIPAY_PUBLIC_KEY),
            "seller_id": self.seller_id,
            "admin_url": f"{base}/simulator/admin/",
            "data_dir": str(self.data_dir),
        }


def _digits(count):
    return "".join(secrets.choice("0123456789") for _ in range(count))


def _write_key_pair(directory, private_name, public_name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / private_name
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    (directory / public_name).write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _create(directory):
    directory.mkdir(parents=True, exist_ok=True)
    _write_key_pair(directory, APP_PRIVATE_KEY, APP_PUBLIC_KEY)
    _write_key_pair(directory, ALIPAY_PRIVATE_KEY, ALIPAY_PUBLIC_KEY)
    ids = {"app_id": "2021" + _digits(12), "seller_id": "2088" + _digits(12),
           "seller_email": "fin***@example.com", "fee_rate": DEFAULT_FEE_RATE}
    # Written last: a directory holding account.json holds its keys too.
    (directory / ACCOUNT_FILE).write_text(json.dumps(ids, indent=2) + "\n")


def open_account(data_dir):
    """The account kept in ``data_dir``, made there first if the directory holds none."""
    directory = Path(data_dir).resolve()
    if not (directory / ACCOUNT_FILE).exists():
        _create(directory)
    ids = json.loads((directory / ACCOUNT_FILE).read_text())
    return Account(
        data_dir=directory,
        app_id=ids["app_id"],
        seller_id=ids["seller_id"],
        seller_email=ids["seller_email"],
        fee_rate=Decimal(ids["fee_rate"]),
        app_public_key=serialization.load_pem_public_key((directory / APP_PUBLIC_KEY).read_bytes()),
        alipay_private_key=serialization.load_pem_private_key((directory / ALIPAY_PRIVATE_KEY).read_bytes(),
                                                              password=None),
    )
