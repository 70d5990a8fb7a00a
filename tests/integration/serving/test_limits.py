"""TGI's limits: token budgets (422 with TGI's wording), parameter checks, concurrency (429)."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from kubetune.testing.servers import Server

from .conftest import MAX_INPUT_TOKENS, MAX_TOTAL_TOKENS, metric_value

LONG = " ".join(["billing"] * 80)  # over the input limit, under the total


def _error(response: requests.Response) -> str:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error_type"] == "validation"
    return str(body["error"])


def test_input_over_max_input_tokens_is_refused(server: Server) -> None:
    message = _error(server.generate(LONG, max_new_tokens=1))
    assert message.startswith(
        f"Input validation error: `inputs` must have less than {MAX_INPUT_TOKENS} tokens. Given: "
    )


def test_input_plus_max_new_tokens_over_the_total_is_refused(server: Server) -> None:
    message = _error(server.generate("reset a password", max_new_tokens=MAX_TOTAL_TOKENS))
    assert message.startswith(
        f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= {MAX_TOTAL_TOKENS}. Given: "
    )
    assert message.endswith(f"`inputs` tokens and {MAX_TOTAL_TOKENS} `max_new_tokens`")


def test_truncate_keeps_the_end_of_a_long_input(server: Server) -> None:
    response = server.generate(LONG, max_new_tokens=2, truncate=10, details=True)
    assert response.status_code == 200, response.text
    assert response.headers["x-prompt-tokens"] == "10"


@pytest.mark.parametrize(
    ("inputs", "parameters", "message"),
    [
        ("", {}, "Input validation error: `inputs` cannot be empty"),
        ("hi", {"temperature": 0}, "Input validation error: `temperature` must be strictly positive"),
        ("hi", {"top_p": 1.0}, "Input validation error: `top_p` must be > 0.0 and < 1.0"),
        ("hi", {"max_new_tokens": 0}, "Input validation error: `max_new_tokens` must be strictly positive"),
        (
            "hi",
            {"stop": ["a", "b", "c", "d", "e"]},
            "Input validation error: `stop` supports up to 4 stop sequences. Given: 5",
        ),
        ("hi", {"top_n_tokens": 9}, "Input validation error: `top_n_tokens` must be >= 0 and <= 5. Given: 9"),
        ("hi", {"best_of": 2}, "Input validation error: you must use sampling when `best_of` is > 1"),
    ],
)
def test_parameter_checks_use_tgis_wording(
    server: Server, inputs: str, parameters: dict[str, object], message: str
) -> None:
    assert _error(server.post("/generate", {"inputs": inputs, "parameters": parameters})) == message


def test_malformed_body_is_a_422_in_tgis_error_shape(server: Server) -> None:
    response = requests.post(f"{server.url}/generate", data=b"{not json", timeout=10)
    assert response.status_code == 422
    assert response.json()["error"].startswith("Failed to deserialize the JSON body into the target type")
    wrong_type = server.post("/generate", {"inputs": "hi", "parameters": {"max_new_tokens": "many"}})
    assert wrong_type.status_code == 422 and "parameters.max_new_tokens" in wrong_type.json()["error"]


def test_requests_over_the_concurrency_limit_get_429(overload_server: Server) -> None:
    first: dict[str, requests.Response] = {}
    thread = threading.Thread(
        target=lambda: first.setdefault("r", overload_server.generate("hi", max_new_tokens=2))
    )
    thread.start()
    # the server counts a request and takes its permit in one step, so once the count moves the
    # only permit is held (for the injected 2 s)
    deadline = time.monotonic() + 30
    while metric_value(overload_server.metrics(), "tgi_request_count") < 1:
        assert time.monotonic() < deadline, "the first request never arrived"
        time.sleep(0.02)  # polling interval
    second = overload_server.generate("hi", max_new_tokens=2)
    thread.join(60)
    assert second.status_code == 429
    assert second.json() == {"error": "Model is overloaded", "error_type": "overloaded"}
    assert first["r"].status_code == 200
    text = overload_server.metrics()
    assert metric_value(text, 'tgi_request_failure{err="overloaded"}') == 1
    assert metric_value(text, "tgi_request_success") == 1
