"""Schemathesis fuzzes the server's own OpenAPI schema: whatever it sends, no answer is a 5xx, every 4xx
has a JSON error body, and every 2xx matches the schema. Bounded and derandomized: the same cases each run."""

from __future__ import annotations

import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from genlab.serve import create_app, open_runs
from tests.serving import running_server

KEY = "fuzz-key"
MODEL_FOR = {
    "/v1/completions": "lm",
    "/v1/images/generations": "gan",
    "/v1/classifications": "finetune",
    "/v1/audio/generations": "audio",
    "/v1/translations": "translation",
}
EXAMPLES = 40  # per operation


@pytest.fixture(scope="module")
def operations(served_runs):
    app = create_app(open_runs(list(served_runs.values())), api_key=KEY)
    with running_server(app) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        yield {f"{op.method.upper()} {op.path}": op for op in (r.ok() for r in schema.get_all_operations())}


def errors_are_json(ctx, response, case) -> None:
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body["error"]["message"], str) and body["error"]["message"], body


def aim_at_a_model(case) -> None:
    """Half the generated bodies name a served model of the right kind, so that fuzzing reaches the models
    rather than stopping at "no model named ..."; max_tokens stays small to keep each case fast."""
    body = case.body
    if not isinstance(body, dict):
        return
    if "model" in body and zlib.crc32(repr(sorted(body.items(), key=str)).encode()) % 2:
        body["model"] = MODEL_FOR.get(case.path, body["model"])
    if isinstance(body.get("max_tokens"), int):
        body["max_tokens"] = min(body["max_tokens"], 64)


@pytest.mark.parametrize(
    "name",
    [
        "GET /health",
        "GET /v1/models",
        "GET /v1/models/{model}",
        "POST /v1/completions",
        "POST /v1/images/generations",
        "POST /v1/classifications",
        "POST /v1/audio/generations",
        "POST /v1/translations",
    ],
)
def test_no_request_gets_a_server_error(operations, name):
    @given(case=operations[name].as_strategy())
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def fuzz(case):
        aim_at_a_model(case)
        case.call_and_validate(
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=60,
            checks=[not_a_server_error, response_schema_conformance],
            additional_checks=[errors_are_json],
        )

    fuzz()
