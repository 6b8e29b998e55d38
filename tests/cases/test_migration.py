"""The cases migration builds what the models describe, and comes down cleanly."""
from flask_migrate import downgrade, upgrade

from tests.migrations import model_diffs, revision_below


def test_cases_tables_and_violation_columns_match_the_models(app):
    assert model_diffs("cases") == []
    assert model_diffs("case_files") == []
    assert [d for d in model_diffs("violations") if "contest_case" in repr(d) or "due_on" in repr(d)
            or "fee_stopped_on" in repr(d)] == []


def test_cases_migration_goes_down_and_up_again(app):
    downgrade(revision=revision_below("0014_cases"))
    upgrade()
    assert model_diffs("cases") == []
