"""Real concurrency on PostgreSQL and SQLite: filers and payers at once, one case at most, no contest beside a hold."""
import uuid

from sqlalchemy import func, select

from cases.models import Case
from finepay.extensions import db
from payments import services as payments
from tests.cases.helpers import STATEMENT
from tests.payments.helpers import PLATE, VIN, overdue_violation
from tests.payments.test_race import run_together

FILERS = 5
PAYERS = 5


def test_many_filers_and_payers_leave_one_case_and_no_payment_beside_it(app, database_url):
    violation_id = overdue_violation().id
    db.session.remove()

    def filer(client):
        response = client.post("/api/v1/cases", data={
            "plate": PLATE, "vin_last6": VIN, "violation_id": str(violation_id), "kind": "contest",
            "reason": "other", "statement": STATEMENT}, content_type="multipart/form-data")
        return ("file", response.status_code, (response.get_json() or {}).get("code"))

    def payer(client):
        response = client.post("/api/v1/payments", json={"plate": PLATE, "vin_last6": VIN,
                                                         "violation_ids": [violation_id]},
                               headers={"Idempotency-Key": str(uuid.uuid4())})
        return ("pay", response.status_code, (response.get_json() or {}).get("code"))

    # Half the threads contest the violation, half try to pay it, all released together.
    jobs = iter([filer] * FILERS + [payer] * PAYERS)

    def one_of_them(client):
        return next(jobs)(client)

    results = run_together(database_url, FILERS + PAYERS, one_of_them)
    assert not [r for r in results if isinstance(r, dict)], results  # no exception, no 500
    assert all(status < 500 for _kind, status, _code in results), results
    filed = [r for r in results if r[0] == "file" and r[1] == 201]
    cases = db.session.execute(select(func.count()).select_from(Case)).scalar_one()
    assert len(filed) == cases <= 1, results
    if cases:
        assert payments.open_holds([violation_id]) == {}, results
    refused = {code for kind, status, code in results if kind == "file" and status != 201}
    assert refused <= {"case_open", "payment_in_progress"}, results
