"""How much database work one card payment costs: counted, so that it cannot creep back up unnoticed.

Throughput is measured by `make bench`, never here; these are counts, which do
not depend on the machine. A payment (create, then confirm with a card that
succeeds at once) used to take 43 statements and 7 commits on PostgreSQL, most
of them objects read back after a commit only to be shown, and the same rows
locked twice. Now the response shows what the last transaction wrote, each row
is locked once per transaction, and the audit entries of a transaction go in
with one INSERT.
"""
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from finepay.extensions import db
from tests.payments.helpers import confirm, create_ok, fresh_violation

# PostgreSQL, sandbox gateway (its own ledger writes included): create 13 + 3 commits, confirm 15 + 3. One
# statement each reads the chosen violations' instalment plans (violations.instalments), since plans exist.
STATEMENTS_PER_PAYMENT = 28
COMMITS_PER_PAYMENT = 6
# Asking for the official e-receipt once the payment has committed (payments.ereceipt_requests, the sandbox
# issuer's own table included): claim, read, record the e-receipt and its audit entry, mark the request done.
STATEMENTS_PER_ERECEIPT = 22
COMMITS_PER_ERECEIPT = 6


@pytest.fixture
def counted(app):
    """Counts of the statements and commits sent on every connection of the app's engine."""
    counts = {"statements": 0, "commits": 0}

    def statement(*_args):
        counts["statements"] += 1

    def commit(_conn):
        counts["commits"] += 1

    event.listen(db.engine, "before_cursor_execute", statement)
    event.listen(db.engine, "commit", commit)
    yield counts
    event.remove(db.engine, "before_cursor_execute", statement)
    event.remove(db.engine, "commit", commit)


def pay_once(client, violation_id=None):
    payment = create_ok(client, [violation_id or fresh_violation().id])
    response = confirm(client, payment["id"])
    assert response.status_code == 200 and response.get_json()["status"] == "succeeded", response.get_json()
    return response.get_json()


def _counted_payment(client, counted):
    pay_once(client)  # the first payment warms the caches (statements compiled, connections open)
    violation_id = fresh_violation().id
    counted.update(statements=0, commits=0)
    paid = pay_once(client, violation_id)
    assert paid["receipt_number"] and paid["refunds"] == []
    return counted


@pytest.mark.parametrize("app_config", [{"ERECEIPT_ISSUER": "none"}])
def test_a_card_payment_costs_a_bounded_number_of_statements_and_commits(app, client, counted):
    counted = _counted_payment(client, counted)
    assert counted["commits"] <= COMMITS_PER_PAYMENT, counted
    assert counted["statements"] <= STATEMENTS_PER_PAYMENT, counted


def test_its_official_e_receipt_adds_a_bounded_number_more(app, client, counted):
    counted = _counted_payment(client, counted)
    assert counted["commits"] <= COMMITS_PER_PAYMENT + COMMITS_PER_ERECEIPT, counted
    assert counted["statements"] <= STATEMENTS_PER_PAYMENT + STATEMENTS_PER_ERECEIPT, counted


def test_what_a_payment_shows_after_settling_is_what_the_database_holds(app, client):
    """The response is built from the objects the last transaction wrote, not read back: they must agree."""
    paid = pay_once(client)
    row = db.session.execute(sa.text(
        "SELECT status, amount_received, receipt_number FROM payments WHERE id = :id"), {"id": paid["id"]}).one()
    assert (row.status, row.amount_received, row.receipt_number) == (
        paid["status"], paid["amount"], paid["receipt_number"])
    items = db.session.execute(sa.text(
        "SELECT violation_id, settled FROM payment_items WHERE payment_id = :id"), {"id": paid["id"]}).all()
    assert {(i.violation_id, bool(i.settled)) for i in items} == {
        (item["violation_id"], True) for item in paid["items"]}
