"""One driver in their own process: wait for the start signal, create a payment, confirm it, print JSON.

python -m tests.reliability.payer BASE_URL START_AT PLATE VIN VIOLATION_ID
"""
import json
import sys
import time
import uuid

import requests


def main(base_url, start_at, plate, vin, violation_id):
    """Pay one violation once, as a browser tab would; print what happened."""
    session = requests.Session()
    time.sleep(max(0.0, float(start_at) - time.time()))
    result = {}
    try:
        created = session.post(f"{base_url}/api/v1/payments", headers={"Idempotency-Key": str(uuid.uuid4())},
                               json={"plate": plate, "vin_last6": vin, "violation_ids": [int(violation_id)]},
                               timeout=60)
        body = created.json()
        result.update(create=created.status_code, create_code=body.get("code"))
        if created.status_code == 201:
            confirmed = session.post(f"{base_url}/api/v1/payments/{body['id']}/confirm",
                                     json={"payment_method": "pm_card_visa"}, timeout=60)
            answer = confirmed.json()
            result.update(payment_id=body["id"], confirm=confirmed.status_code, status=answer.get("status"),
                          confirm_code=answer.get("code"), receipt=answer.get("receipt_number"))
    except (requests.RequestException, ValueError) as exc:
        result["error"] = repr(exc)
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
