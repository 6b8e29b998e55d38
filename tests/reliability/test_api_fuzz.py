"""schemathesis against /api/openapi.json: every operation, no 5xx, responses match their schemas."""
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.payments.helpers import overdue_violation

MAX_EXAMPLES = 15


@pytest.fixture
def app_config():
    """Limits out of reach: the fuzzer would otherwise spend its examples on 429s.

    (Not RATELIMIT_ENABLED=False: the limiter object is shared by every app in the process.)
    """
    return {"LOOKUP_RATE_LIMIT": "100000/minute", "PLATE_FAILURE_RATE_LIMIT": "100000/hour"}


@pytest.fixture
def api_schema(app):
    """The live OpenAPI document, called in-process through WSGI, with data in the database."""
    overdue_violation()
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


def test_every_operation_answers_without_5xx_and_within_its_schema(api_schema):
    """Each operation of the document, fuzzed in turn (schemathesis' pytest plugin predates pytest 9)."""
    figures = {"operations": 0, "requests": 0, "server_errors": 0}
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        figures["operations"] += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call()
            figures["requests"] += 1
            figures["server_errors"] += response.status_code >= 500
            case.validate_response(response, checks=(not_a_server_error, response_schema_conformance))

        try:
            fuzz()
        except Exception as error:  # noqa: BLE001  (collect every operation's failure, then report)
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
    print(f"\n[reliability] schemathesis: operations {figures['operations']}, requests sent {figures['requests']} "
          f"(max {MAX_EXAMPLES} examples each), 5xx answers {figures['server_errors']}, "
          f"schema violations {len(failures)}")
    assert figures["operations"] >= 5
    assert not failures, "\n\n".join(failures)
