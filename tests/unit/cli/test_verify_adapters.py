"""The adapter verifier refuses adapters that answer like the base model (TGI's silent fallback)."""

from kubetune.cli.verify import check
from kubetune.clients.tgi import TGIError


def answers(table: dict[str | None, str]) -> "object":
    def generate(adapter: str | None) -> str:
        value = table[adapter]
        if value.startswith("ERROR"):
            raise TGIError(value)
        return value

    return generate


def test_distinct_answers_verify() -> None:
    verdict = check(["a", "b"], answers({None: "base", "a": "alpha", "b": "beta"}))  # type: ignore[arg-type]
    assert verdict.verified and verdict.reason == "2 adapter(s) verified"


def test_answer_equal_to_base_fails_naming_the_adapter() -> None:
    verdict = check(["a", "b"], answers({None: "base", "a": "alpha", "b": "base"}))  # type: ignore[arg-type]
    assert not verdict.verified
    assert "adapter b answers exactly like the base model" in verdict.reason


def test_unknown_adapter_error_is_reported() -> None:
    verdict = check(["a"], answers({None: "base", "a": "ERROR 422: adapter `a` is not loaded"}))  # type: ignore[arg-type]
    assert not verdict.verified and "adapter a: ERROR 422" in verdict.reason


def test_unreachable_server_is_not_verified() -> None:
    verdict = check(["a"], answers({None: "ERROR unreachable"}))  # type: ignore[arg-type]
    assert not verdict.verified and verdict.reason.startswith("base model:")
