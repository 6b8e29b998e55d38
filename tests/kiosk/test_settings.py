"""The kiosk's settings come from the environment like every other."""
from finepay import settings


def test_kiosk_settings_have_defaults_and_read_the_environment(tmp_path):
    defaults = settings.from_env(str(tmp_path), env={})
    chosen = settings.from_env(str(tmp_path), env={"KIOSK_IDLE_SECONDS": "45", "KIOSK_CREDENTIAL_DAYS": "30"})

    assert (defaults["KIOSK_IDLE_SECONDS"], defaults["KIOSK_CREDENTIAL_DAYS"]) == (90, 365)
    assert (chosen["KIOSK_IDLE_SECONDS"], chosen["KIOSK_CREDENTIAL_DAYS"]) == (45, 30)
