"""Solving FinePay's proof-of-work challenges in tests, as an API client would (any ALTCHA v2 solver)."""
import altcha


def solve(challenge):
    """The ``altcha`` value for a challenge as received in a challenge_required answer."""
    parsed = altcha.Challenge.from_dict(challenge)
    solution = altcha.solve_challenge(parsed, timeout=60)
    assert solution is not None, "challenge not solved"
    return altcha.Payload(parsed, solution).to_base64()


def assert_challenge_required(response):
    """A 429 challenge_required JSON answer in FinePay's error shape, with a challenge; returns the challenge."""
    assert response.status_code == 429, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == "challenge_required", body
    assert isinstance(body["message"], str) and body["message"]
    assert body["errors"] == {}
    challenge = body["challenge"]
    assert challenge["parameters"]["algorithm"] == "PBKDF2/SHA-256"
    assert challenge["signature"]
    return challenge
