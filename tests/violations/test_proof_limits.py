"""Proving a vehicle costs the same everywhere (lookup API and page, payments API, kiosk), and nobody can
lock an owner out: once a plate's failure budget is spent it asks for a proof-of-work challenge instead.
"""
import pytest
import redis
from sqlalchemy import select

from finepay.extensions import db
from payments.models import Payment
from tests.challenge import assert_challenge_required, solve
from tests.conftest import make_app
from tests.kiosk.helpers import enrol, start_visit
from tests.payments.helpers import PLATE, VIN, create, new_key, overdue_violation
from tests.reliability.servers import redis_database

WRONG_VINS = ["B12345", "C12345", "D12345", "E12345", "F12345", "G12345"]


def api_lookup(client, addr="10.0.0.1", **body):
    body = body or {"plate": PLATE, "vin_last6": VIN}
    return client.post("/api/v1/lookups", json=body, environ_base={"REMOTE_ADDR": addr})


def page_lookup(client, addr="10.0.0.1", **form):
    form = form or {"plate": PLATE, "vin_last6": VIN}
    return client.post("/lookup", data={"proof": "vin", **form}, environ_base={"REMOTE_ADDR": addr})


def api_pay(client, ids, addr="10.0.0.1", vin=VIN, key=None, **extra):
    body = {"plate": PLATE, "vin_last6": vin, "violation_ids": ids, **extra}
    return client.post("/api/v1/payments", json=body, headers={"Idempotency-Key": key or new_key()},
                       environ_base={"REMOTE_ADDR": addr})


def spend_plate_budget(client, failures=2):
    """Wrong VIN codes for PLATE, each from a different address, through the lookup API."""
    for n in range(failures):
        assert api_lookup(client, f"10.9.0.{n}", plate=PLATE, vin_last6=WRONG_VINS[n]).status_code == 404


def open_payments():
    return db.session.execute(select(Payment).where(Payment.status == "created")).scalars().all()


# --- item 6: the payments API is limited like a lookup ---------------------------------------------------


class TestPaymentsShareThePerClientLimit:
    @pytest.fixture
    def app_config(self):
        return {"LOOKUP_RATE_LIMIT": "3/minute", "PLATE_FAILURE_RATE_LIMIT": "1000/hour"}

    def test_lookups_use_up_the_payment_budget_of_the_address(self, client):
        violation = overdue_violation()
        for _ in range(3):
            assert api_lookup(client).status_code == 200

        response = api_pay(client, [violation.id])

        assert response.status_code == 429
        assert response.get_json()["code"] == "rate_limited"
        assert response.headers["Retry-After"].isdigit()
        assert open_payments() == []

    def test_payment_attempts_use_up_the_lookup_budget_of_the_address(self, client):
        violation = overdue_violation()
        for vin in WRONG_VINS[:3]:
            assert api_pay(client, [violation.id], vin=vin).status_code == 422

        assert api_lookup(client).status_code == 429
        assert page_lookup(client).status_code == 429
        assert api_pay(client, [violation.id]).status_code == 429
        assert api_lookup(client, "10.0.0.2").status_code == 200  # another client is not limited


class TestPaymentsShareThePlateBudget:
    @pytest.fixture
    def app_config(self):
        return {"LOOKUP_RATE_LIMIT": "1000/minute", "PLATE_FAILURE_RATE_LIMIT": "2/hour"}

    def test_failed_payment_proofs_count_as_failed_lookups(self, client):
        violation = overdue_violation()
        assert api_pay(client, [violation.id], addr="10.0.0.1", vin="B12345").status_code == 422
        assert api_pay(client, [violation.id], addr="10.0.0.2", vin="C12345").status_code == 422

        assert_challenge_required(api_lookup(client, "10.0.0.3"))

    def test_an_unknown_violation_id_counts_as_a_failed_lookup(self, client):
        violation = overdue_violation()
        assert api_pay(client, [violation.id, violation.id + 1000], addr="10.0.0.1").status_code == 422
        assert api_pay(client, [violation.id + 1001], addr="10.0.0.2").status_code == 422

        assert_challenge_required(api_lookup(client, "10.0.0.3"))

    def test_failed_lookups_make_payment_creation_ask_for_a_challenge(self, client):
        violation = overdue_violation()
        spend_plate_budget(client)

        response = api_pay(client, [violation.id], addr="10.0.0.3")

        assert_challenge_required(response)
        assert open_payments() == []

    def test_the_right_code_guessed_without_the_challenge_does_not_cancel_the_owners_payment(self, client):
        violation = overdue_violation()
        owners = api_pay(client, [violation.id], addr="10.0.0.50")
        assert owners.status_code == 201
        for n, vin in enumerate(WRONG_VINS[:2]):
            assert api_pay(client, [violation.id], addr=f"10.0.0.{n}", vin=vin).status_code == 422

        guess = api_pay(client, [violation.id], addr="10.0.0.9")  # the right code, but the budget is spent

        assert_challenge_required(guess)
        assert [p.id for p in open_payments()] == [owners.get_json()["id"]]

    def test_the_owner_pays_through_the_api_after_solving_the_challenge(self, client):
        violation = overdue_violation()
        spend_plate_budget(client)
        challenge = assert_challenge_required(api_pay(client, [violation.id]))

        response = api_pay(client, [violation.id], altcha=solve(challenge))

        assert response.status_code == 201, response.get_json()


class TestOneAnswerForEveryFailedPaymentProof:
    @pytest.fixture
    def app_config(self):
        return {"LOOKUP_RATE_LIMIT": "1000/minute", "PLATE_FAILURE_RATE_LIMIT": "1000/hour"}

    def test_a_wrong_code_and_an_unknown_id_answer_identically(self, client):
        violation = overdue_violation()
        other = overdue_violation(plate="京A00001", vin_last6="B22222")
        ids = [violation.id, other.id]

        wrong_code = api_pay(client, ids, vin="B12345")
        unknown_id = api_pay(client, ids)  # the right code, with another vehicle's violation
        unknown_alone = api_pay(client, [violation.id, 10**9])

        assert wrong_code.status_code == unknown_id.status_code == unknown_alone.status_code == 422
        assert wrong_code.get_json() == unknown_id.get_json() == unknown_alone.get_json()
        assert wrong_code.get_json()["code"] == "unknown_violation"
        assert str(violation.id) not in wrong_code.get_data(as_text=True)

    def test_an_unproven_request_leaves_the_owners_payment_open(self, client):
        violation = overdue_violation()
        owners = create(client, [violation.id])
        assert owners.status_code == 201

        for vin in WRONG_VINS[:3]:
            assert api_pay(client, [violation.id], vin=vin).status_code == 422
        assert api_pay(client, [violation.id, 10**9]).status_code == 422

        assert [p.id for p in open_payments()] == [owners.get_json()["id"]]


# --- item 7: a spent budget asks for work, never locks the owner out ---------------------------------------


class TestChallengeInsteadOfLockout:
    @pytest.fixture
    def app_config(self):
        return {"LOOKUP_RATE_LIMIT": "1000/minute", "PLATE_FAILURE_RATE_LIMIT": "2/hour"}

    def test_the_owner_looks_up_after_solving_the_challenge(self, client):
        overdue_violation()
        spend_plate_budget(client)
        challenge = assert_challenge_required(api_lookup(client))

        response = api_lookup(client, plate=PLATE, vin_last6=VIN, altcha=solve(challenge))

        assert response.status_code == 200
        assert response.get_json()["plate"] == PLATE

    def test_a_solution_is_accepted_once(self, client):
        overdue_violation()
        spend_plate_budget(client)
        solved = solve(assert_challenge_required(api_lookup(client)))
        assert api_lookup(client, plate=PLATE, vin_last6=VIN, altcha=solved).status_code == 200

        replay = api_lookup(client, "10.0.0.2", plate=PLATE, vin_last6=VIN, altcha=solved)

        assert_challenge_required(replay)

    def test_a_solution_is_bound_to_its_plate(self, client):
        overdue_violation()
        overdue_violation(plate="京A00001", vin_last6="B22222")
        spend_plate_budget(client)
        for n, vin in enumerate(WRONG_VINS[:2]):
            api_lookup(client, f"10.8.0.{n}", plate="京A00001", vin_last6=vin)
        solved_for_other = solve(assert_challenge_required(api_lookup(client, plate="京A00001", vin_last6="B22222")))

        response = api_lookup(client, plate=PLATE, vin_last6=VIN, altcha=solved_for_other)

        assert_challenge_required(response)

    def test_a_forged_or_tampered_solution_is_refused(self, client):
        overdue_violation()
        spend_plate_budget(client)
        challenge = assert_challenge_required(api_lookup(client))
        challenge["parameters"]["cost"] = 1
        challenge["parameters"]["keyPrefix"] = ""
        for forged in (solve(challenge), "bm90IGEgcGF5bG9hZA==", "%%%", "A" * 4000):
            assert_challenge_required(api_lookup(client, plate=PLATE, vin_last6=VIN, altcha=forged))

    def test_an_expired_solution_is_refused(self, app, client):
        overdue_violation()
        spend_plate_budget(client)
        app.config["CHALLENGE_TTL_SECONDS"] = -1  # issued already expired
        solved = solve(assert_challenge_required(api_lookup(client)))
        app.config["CHALLENGE_TTL_SECONDS"] = 600

        assert_challenge_required(api_lookup(client, plate=PLATE, vin_last6=VIN, altcha=solved))

    def test_a_wrong_code_with_a_solved_challenge_is_still_a_failure(self, client):
        overdue_violation()
        spend_plate_budget(client)
        challenge = assert_challenge_required(api_lookup(client))

        response = api_lookup(client, plate=PLATE, vin_last6="H12345", altcha=solve(challenge))

        assert response.status_code == 404
        assert response.get_json()["code"] == "not_found"

    def test_the_page_asks_the_browser_for_the_challenge_and_then_shows_the_fines(self, client):
        overdue_violation()
        spend_plate_budget(client)

        page = page_lookup(client)
        text = page.get_data(as_text=True)
        assert page.status_code == 429
        assert 'id="challenge-status"' in text and 'role="status"' in text
        assert "/static/js/challenge.js" in text
        assert f'value="{VIN}"' in text  # the form comes back filled in, to be sent again
        challenge = assert_challenge_required(api_lookup(client))

        results = page_lookup(client, plate=PLATE, vin_last6=VIN, altcha=solve(challenge))

        assert results.status_code == 200
        assert 'id="total-payable"' in results.get_data(as_text=True)

    def test_the_kiosk_asks_for_the_challenge_and_then_shows_the_fines(self, client):
        overdue_violation()
        enrol(client)
        headers = start_visit(client)
        assert client.post("/kiosk/api/plate", json={"plate": PLATE}, headers=headers).status_code == 200
        for vin in WRONG_VINS[:2]:
            assert client.post("/kiosk/api/lookup", json={"vin_last6": vin}, headers=headers).status_code == 404

        asked = client.post("/kiosk/api/lookup", json={"vin_last6": VIN}, headers=headers)
        challenge = assert_challenge_required(asked)
        shown = client.post("/kiosk/api/lookup", json={"vin_last6": VIN, "altcha": solve(challenge)},
                            headers=headers)

        assert shown.status_code == 200 and shown.get_json()["screen"] == "violations"
        # The kiosk's failures counted for the plate online too.
        assert_challenge_required(api_lookup(client, "10.0.0.7"))


def test_the_openapi_document_describes_the_challenge(client):
    spec = client.get("/api/openapi.json").get_json()

    for path in ("/api/v1/lookups", "/api/v1/payments"):
        operation = spec["paths"][path]["post"]
        assert "challenge_required" in operation["responses"]["429"]["description"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert "altcha" in spec["components"]["schemas"][body]["properties"]


REDIS_DB = 13  # this task's own Redis database


@pytest.fixture
def redis_url(tmp_path):
    """This task's Redis database, emptied before and after: the machine's Redis, else a private redis-server."""
    with redis_database(tmp_path, REDIS_DB) as url:
        yield url


@pytest.fixture
def redis_db(redis_url):
    """A connection to that database."""
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


class TestWithLimitsInRedis:
    """An app whose limits and used solutions live in Redis, as under gunicorn with several workers."""

    @pytest.fixture
    def app_config(self, redis_url):
        return {"RATELIMIT_STORAGE_URI": redis_url, "LOOKUP_RATE_LIMIT": "1000/minute",
                "PLATE_FAILURE_RATE_LIMIT": "2/hour"}

    def test_used_solutions_are_kept_in_redis_so_every_worker_refuses_a_replay(self, redis_db, redis_url, app,
                                                                              client, database_url):
        overdue_violation()
        spend_plate_budget(client)
        solved = solve(assert_challenge_required(api_lookup(client)))
        assert api_lookup(client, plate=PLATE, vin_last6=VIN, altcha=solved).status_code == 200
        # Another worker: a second app on the same database and the same Redis, with nothing in memory.
        other = make_app(database_url, RATELIMIT_STORAGE_URI=redis_url, PLATE_FAILURE_RATE_LIMIT="2/hour")

        with other.app_context():
            replay = other.test_client().post("/api/v1/lookups",
                                              json={"plate": PLATE, "vin_last6": VIN, "altcha": solved})
            assert_challenge_required(replay)
            db.session.remove()
            db.engine.dispose()
        used = [key for key in redis_db.keys("*") if b"finepay-altcha-used/" in key]
        assert len(used) == 1
        assert 0 < redis_db.ttl(used[0]) <= 660
