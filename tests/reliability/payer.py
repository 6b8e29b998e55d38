"""One driver: create a payment, confirm it, report what they saw; and races of many such drivers.

As its own process (one per driver, so that a race is a real one):
python -m tests.reliability.payer BASE_URL PLATE VIN VIOLATION_ID
prints "ready", waits for a line on stdin (the start signal), pays and prints the result as JSON.
"""
import json
import subprocess
import sys
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def _json(response):
    """The body as JSON, or {} (a proxy's error page is HTML: its status still counts)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def pay(base_url, plate, vin, violation_id, session=requests):
    """Pay one violation (or a list of them) once, as a browser tab would; returns what happened."""
    ids = [int(i) for i in violation_id] if isinstance(violation_id, list | tuple) else [int(violation_id)]
    result = {}
    try:
        created = session.post(f"{base_url}/api/v1/payments", headers={"Idempotency-Key": str(uuid.uuid4())},
                               json={"plate": plate, "vin_last6": vin, "violation_ids": ids},
                               timeout=60)
        body = _json(created)
        result.update(create=created.status_code, create_code=body.get("code"))
        if created.status_code == 201:
            confirmed = session.post(f"{base_url}/api/v1/payments/{body['id']}/confirm",
                                     json={"payment_method": "pm_card_visa"}, timeout=60)
            answer = _json(confirmed)
            result.update(payment_id=body["id"], confirm=confirmed.status_code, status=answer.get("status"),
                          confirm_code=answer.get("code"), receipt=answer.get("receipt_number"))
    except requests.RequestException as exc:
        result["error"] = repr(exc)
    return result


def describe(result):
    """What the driver saw, in one short line: 'confirm 200 succeeded', 'create 409 ...', 'broken'."""
    if "error" in result:
        return "broken"
    if "confirm" not in result:
        return f"create {result['create']} {result.get('create_code')}"
    return f"confirm {result['confirm']} {result.get('status') or result.get('confirm_code')}"


def race(base_url, plate, vin, violation_id, payers, env=None):
    """payers processes pay the same violation at the same moment; returns their results."""
    processes = [
        subprocess.Popen([sys.executable, "-m", "tests.reliability.payer", base_url, plate, vin, str(violation_id)],
                         cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for _ in range(payers)
    ]
    # A barrier, not a fixed delay: on a busy machine starting 50 interpreters can take longer than any guess.
    ready = [process.stdout.readline().strip() == "ready" for process in processes]
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process, was_ready in zip(processes, ready, strict=True):
        out, err = process.communicate(timeout=120)
        results.append(json.loads(out) if was_ready and out.strip() else {"error": (out + err)[-500:]})
    return results


def main(base_url, plate, vin, violation_id):
    """Say ready, wait for the start signal on stdin, pay, print the result as JSON."""
    session = requests.Session()
    print("ready", flush=True)
    sys.stdin.readline()
    print(json.dumps(pay(base_url, plate, vin, violation_id, session=session)))


if __name__ == "__main__":
    main(*sys.argv[1:])
