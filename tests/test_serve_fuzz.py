"""Fuzz the scoring API from its own OpenAPI schema (schemathesis, in-process ASGI app, TF-IDF model).

Every generated request must get a response the schema documents, and never a 5xx. The run is
deterministic (derandomized) and bounded (``FUZZ_EXAMPLES`` examples per operation).
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve,test]'")
schemathesis = pytest.importorskip("schemathesis", reason="pip install -e '.[serve,test]'")

from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from comment_stance import load_model  # noqa: E402
from comment_stance.serve import create_app  # noqa: E402
from comment_stance.serve.app import Limits  # noqa: E402
from comment_stance.training import train  # noqa: E402

from .conftest import FIXTURES  # noqa: E402

FUZZ_EXAMPLES = 30
CALLS: dict[str, int] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    train(FIXTURES / "tiny", "tfidf-logreg", folder / "model")
    app = create_app(load_model(folder / "model"), model_dir=folder / "model", db=folder / "desk.sqlite",
                     targets=folder / "targets.json",
                     limits=Limits(max_body_bytes=200_000, max_comments=20, max_chars=2_000, max_upload_bytes=200_000))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


OPERATIONS = ["POST /v1/score", "POST /v1/queue", "POST /v1/upload", "GET /v1/queue", "POST /v1/decisions",
              "GET /v1/counts", "GET /v1/export", "GET /v1/targets", "PUT /v1/targets", "GET /healthz",
              "GET /readyz", "GET /v1/model", "GET /review.json", "GET /targets.json"]

#: operations that take no parameters and no body: negative data cannot be made for them
NO_INPUT = {"GET /healthz", "GET /readyz"}


def test_every_operation_is_fuzzed(api_schema):
    found = sorted(result.ok().label for result in api_schema.get_all_operations())
    assert found == sorted(OPERATIONS)


# schemathesis' own pytest integration (from_fixture) does not run under pytest 9, so each operation
# gets a plain hypothesis test built from schemathesis' strategy for it
@pytest.mark.parametrize("mode", ["positive", "negative"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_api_follows_its_schema_and_never_fails(api_schema, label, mode):
    """positive: requests the schema allows; negative: requests it forbids (they must get a 4xx)."""
    from hypothesis import given
    from schemathesis import GenerationMode

    if mode == "negative" and label in NO_INPUT:
        return  # nothing in the request to break
    operation = api_schema.find_operation_by_label(label)
    seen = []
    strategy = operation.as_strategy(GenerationMode(mode))

    @given(case=strategy)
    @settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def fuzz(case):
        response = case.call()
        seen.append(response.status_code)
        assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:500]}"
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                 content_type_conformance, response_schema_conformance])

    fuzz()
    assert seen, f"{label}: no request was generated"
    CALLS[f"{mode} {label}"] = len(seen)
    print(f"{mode} {label}: {len(seen)} requests, statuses {sorted(set(seen))}")
