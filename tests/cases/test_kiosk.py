"""A contested violation at a kiosk: shown as under review with its case number, never offered for payment."""
import re

from cases import services
from tests.cases.helpers import STATEMENT
from tests.kiosk.helpers import enrol, prove, start_visit, vehicle


def test_a_contested_violation_is_listed_as_under_review_and_cannot_be_chosen(client):
    enrol(client)
    contested, payable = vehicle()
    case = services.file_case(violation_id=contested, kind="contest", reason="other", statement=STATEMENT,
                              actor="driver")
    headers = start_visit(client)
    listing = prove(client, headers).get_json()["html"]
    assert [int(i) for i in re.findall(r'data-id="(\d+)"', listing)] == [payable]
    assert f'id="kcontest-{contested}"' in listing and case.number in listing
    refused = client.post("/kiosk/api/review", json={"violation_ids": [contested]}, headers=headers)
    assert refused.status_code == 422
