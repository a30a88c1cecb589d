"""`stance serve`: the scoring API, batching, limits, keys, the review desk and its training export.

Every test runs the app in-process (no socket) around a TF-IDF model trained on the tiny fixture.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve,test]'")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from comment_stance import load_model  # noqa: E402
from comment_stance.scoring import predict  # noqa: E402
from comment_stance.serve import create_app  # noqa: E402
from comment_stance.serve.app import ASSET_VERSION, Limits  # noqa: E402
from comment_stance.serve.batching import Batcher, release_free_memory  # noqa: E402
from comment_stance.serve.keys import add_key, hash_key, read_key_file  # noqa: E402
from comment_stance.training import train  # noqa: E402

from .conftest import FIXTURES, REPO  # noqa: E402

EXPORTS = FIXTURES / "exports"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "tfidf"
    train(FIXTURES / "tiny", "tfidf-logreg", out)
    return out


@pytest.fixture
def model(model_dir):
    return load_model(model_dir)


@pytest.fixture
def client(model, model_dir, tmp_path):
    app = create_app(model, model_dir=model_dir, db=tmp_path / "desk.sqlite",
                     targets={"art0": "Pact A", "Why Pact B matters": "Pact B"})
    with TestClient(app) as c:
        yield c


def comments(*texts, **fields):
    return {"comments": [{"text": t, **fields} for t in texts]}


class CountingModel:
    """Wraps a model and counts its forward passes."""

    def __init__(self, model):
        self.model = model
        self.calls = 0
        self.sizes: list[int] = []
        self.inputs: list = []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def predict_proba(self, X):
        self.calls += 1
        self.sizes.append(len(X))
        self.inputs.append(X)
        return self.model.predict_proba(X)


# -- scoring ------------------------------------------------------------------------------------
def test_score_matches_the_scoring_core(client, model):
    texts = ["Sign it already, it is long overdue.", "This pact is a disaster for us.",
             "Only if the refugees are protected."]
    r = client.post("/v1/score", json={"comments": [{"id": f"c{i}", "text": t, "target": "Pact A"}
                                                    for i, t in enumerate(texts)]})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = predict(model, pd.DataFrame({"text": texts, "target": ["Pact A"] * 3}), review_below=0.6)
    assert body["model"]["name"] == "tfidf-logreg" and len(body["model"]["version"]) == 12
    assert [x["id"] for x in body["results"]] == ["c0", "c1", "c2"]
    for result, (_, row) in zip(body["results"], expected.iterrows()):
        assert result["label"] == row["label"]
        assert result["confidence"] == pytest.approx(row["confidence"])
        assert set(result["probabilities"]) == {"conditional", "skeptical", "supportive"}
        assert sum(result["probabilities"].values()) == pytest.approx(1.0)
        assert result["needs_review"] == bool(row["needs_review"])
        assert "review_reason" in result
        assert result["target"] == "Pact A" and result["target_resolved"] is True


def test_parent_text_reaches_the_model(model):
    """The model sees the parent's text: given in the request, or looked up by parent_id on the desk."""
    spy = CountingModel(model)
    with TestClient(create_app(spy)) as c:
        parent = "This pact is a disaster and must be stopped."
        c.post("/v1/score", json={"comments": [{"text": "Exactly.", "parent_text": parent}]})
        assert list(spy.inputs[-1]["parent_text"]) == [parent]
        c.post("/v1/queue", json={"comments": [{"id": "p1", "text": "Sign it today."}]})
        c.post("/v1/score", json={"comments": [{"text": "Agreed.", "parent_id": "p1"},
                                               {"text": "Same batch.", "parent_id": "p2"},
                                               {"id": "p2", "text": "A parent in the same request."}]})
        assert list(spy.inputs[-1]["parent_text"]) == ["Sign it today.", "A parent in the same request.", None]


def test_review_flags_follow_review_below(model):
    app = create_app(model, review_below=1.01)
    with TestClient(app) as c:
        assert all(x["needs_review"] for x in c.post("/v1/score", json=comments("a", "b")).json()["results"])
    app = create_app(model, review_below=None)
    with TestClient(app) as c:
        # no confidence floor: a comment with its pact is not flagged; one without is, for its target
        results = c.post("/v1/score", json={"comments": [{"text": "a", "target": "Pact A"}, {"text": "a"}]}).json()["results"]
        assert [(x["needs_review"], x["review_reason"]) for x in results] == [(False, None), (True, "unknown_target")]


def test_review_columns_of_the_core_are_passed_on(model, monkeypatch):
    """When the scoring core adds review_reason (or any other column), the API forwards it unchanged."""
    import comment_stance.serve.scorer as scorer

    real = scorer.score_columns

    def with_reason(*args, **kwargs):
        columns = real(*args, **kwargs)
        columns["review_reason"] = ["off_topic" if "weather" in t else None for t in args[1].columns["text"]]
        return columns

    monkeypatch.setattr(scorer, "score_columns", with_reason)
    with TestClient(create_app(model)) as c:
        results = c.post("/v1/score", json=comments("Nice weather today.", "Sign the pact.")).json()["results"]
    assert [r["review_reason"] for r in results] == ["off_topic", None]


def test_targets_are_resolved_from_article_or_title(client):
    r = client.post("/v1/score", json={"comments": [
        {"text": "Sign it.", "article_id": "art0"},
        {"text": "Sign it.", "target": "Why Pact B matters"},
        {"text": "Sign it.", "target": "Pact C"},
        {"text": "Sign it.", "article_id": "unknown-article"},
        {"text": "Sign it."},
    ]})
    got = [(x["target"], x["target_resolved"]) for x in r.json()["results"]]
    assert got == [("Pact A", True), ("Pact B", True), ("Pact C", True), (None, False), (None, False)]


def test_target_mapping_is_edited_and_kept_in_its_file(model, tmp_path):
    path = tmp_path / "targets.json"
    with TestClient(create_app(model, targets=path)) as c:
        assert c.get("/v1/targets").json() == {"mapping": {}, "file": str(path)}
        r = c.put("/v1/targets", json={"art9": "Pact B"})
        assert r.status_code == 200 and r.json()["mapping"] == {"art9": "Pact B"}
        assert c.post("/v1/score", json=comments("x", article_id="art9")).json()["results"][0]["target"] == "Pact B"
        bad = c.put("/v1/targets", json={"art9": ""})
        assert bad.status_code == 422 and "art9" in bad.json()["error"]["message"]
        assert c.get("/targets.json").json()["mapping"] == {"art9": "Pact B"}  # the bad edit changed nothing
    assert json.loads(path.read_text()) == {"art9": "Pact B"}
    with TestClient(create_app(model, targets=path)) as c:  # a restart reads it back
        assert c.get("/v1/targets").json()["mapping"] == {"art9": "Pact B"}


def test_model_health_and_openapi(client, model_dir):
    info = client.get("/v1/model").json()
    config = json.loads((model_dir / "config.json").read_text())
    assert info["labels"] == ["conditional", "skeptical", "supportive"]
    assert info["training_data_sha256"] == config["training"]["sha256"]
    assert info["metrics"] == json.loads((model_dir / "metrics.json").read_text())
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["ready"] is True
    schema = client.get("/openapi.json").json()
    assert {"/v1/score", "/v1/queue", "/v1/decisions", "/v1/export", "/v1/upload", "/v1/model"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 404  # its page would load scripts from a CDN


# -- batching -----------------------------------------------------------------------------------
async def _concurrent(app, bodies):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        return await asyncio.gather(*(c.post("/v1/score", json=b) for b in bodies))


def test_concurrent_requests_share_model_calls(model):
    texts = [f"Comment number {i}: sign the pact" + "!" * i for i in range(24)]
    counting = CountingModel(model)
    app = create_app(counting, max_batch=64, batch_wait_ms=50)
    responses = asyncio.run(_concurrent(app, [comments(t, target="Pact A") for t in texts]))
    assert all(r.status_code == 200 for r in responses)
    assert counting.calls < len(texts), counting.sizes
    assert max(counting.sizes) > 1
    expected = predict(model, pd.DataFrame({"text": texts, "target": ["Pact A"] * len(texts)}))
    for response, (_, row) in zip(responses, expected.iterrows()):
        result = response.json()["results"][0]
        assert result["label"] == row["label"]
        assert result["confidence"] == pytest.approx(row["confidence"], abs=1e-12)


def test_batching_off_means_one_call_per_request(model):
    counting = CountingModel(model)
    app = create_app(counting, max_batch=1, batch_wait_ms=50)
    responses = asyncio.run(_concurrent(app, [comments(f"text {i}") for i in range(6)]))
    assert all(r.status_code == 200 for r in responses)
    assert counting.calls == 6


def test_batcher_respects_max_batch_and_reports_failures():
    sizes = []

    def run(items):
        sizes.append(len(items))
        if "boom" in items:
            raise RuntimeError("model failed")
        return [x * 2 for x in items]

    async def main():
        batcher = Batcher(run, max_batch=4, wait_ms=30)
        results = await asyncio.gather(*(batcher.submit([i, i]) for i in range(5)))
        big = await batcher.submit(list(range(9)))  # over max_batch: runs alone, whole
        with pytest.raises(RuntimeError, match="model failed"):
            await batcher.submit(["boom"])
        batcher.close()
        return results, big

    results, big = asyncio.run(main())
    assert results == [[2 * i, 2 * i] for i in range(5)]
    assert big == [2 * i for i in range(9)]
    assert max(sizes[:-2]) <= 4 and sizes[-2] == 9


def test_batcher_hands_free_memory_back_between_batches_not_during_them(monkeypatch):
    import platform

    import comment_stance.serve.batching as batching

    events = []
    monkeypatch.setattr(batching, "release_free_memory", lambda: events.append("release") or True)

    def run(items):
        events.append(len(items))
        return items

    async def main(release_s):
        batcher = Batcher(run, max_batch=4, wait_ms=0, release_s=release_s)
        for i in range(3):
            assert await batcher.submit([i]) == [i]
        stats = batcher.stats()
        batcher.close()
        return stats

    assert asyncio.run(main(0.0))["memory_releases"] == 3
    assert events == [1, "release"] * 3  # after each batch, in the model thread, never inside one
    events.clear()
    assert asyncio.run(main(3600.0))["memory_releases"] == 0 and events == [1, 1, 1]
    events.clear()
    assert asyncio.run(main(None))["memory_releases"] == 0 and events == [1, 1, 1]
    # the real call exists wherever the C library is glibc (Debian, as in CI)
    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")


# -- bad requests: always a 4xx with a message ---------------------------------------------------
def test_limits_give_4xx_that_name_the_limit(model):
    app = create_app(model, limits=Limits(max_body_bytes=2_000, max_comments=3, max_chars=50))
    with TestClient(app) as c:
        r = c.post("/v1/score", json=comments("x" * 51))
        assert r.status_code == 422 and "comments[0].text" in r.json()["error"]["message"]
        assert "50" in r.json()["error"]["message"]
        r = c.post("/v1/score", json=comments("a", "b", "c", "d"))
        assert r.status_code == 422 and "at most 3" in r.json()["error"]["message"]
        r = c.post("/v1/score", json=comments("a" * 40, "b" * 40, "c" * 40) | {"pad": "x" * 3000})
        assert r.status_code == 413 and "2,000 bytes" in r.json()["error"]["message"]
        assert "--max-body-bytes" in r.json()["error"]["hint"]


@pytest.mark.parametrize("body, needle", [
    (b"{not json", "not valid JSON"),
    (b"[]", "not a JSON object"),
    (b'{"comments": []}', "comments"),
    (b'{"comments": [{"text": "   "}]}', "comments[0].text: is blank"),
    (b'{"comments": [{"txt": "hello"}]}', "comments[0]"),
    (b'{"comments": [{"text": 5}]}', "comments[0].text"),
])
def test_bad_bodies_get_a_message(client, body, needle):
    r = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert needle in r.json()["error"]["message"]
    assert "Traceback" not in r.text


def test_unknown_paths_and_methods(client):
    assert client.get("/v1/nope").status_code == 404
    r = client.get("/v1/score")
    assert r.status_code == 405 and r.json()["error"]["message"]


# -- keys ---------------------------------------------------------------------------------------
def test_api_keys_are_stored_hashed_and_checked(model, tmp_path):
    path = tmp_path / "keys.txt"
    key = add_key(path, note="desk 1")
    assert key not in path.read_text() and hash_key(key) in path.read_text()
    assert read_key_file(path) == [hash_key(key)]
    with TestClient(create_app(model, api_keys=path)) as c:
        assert c.post("/v1/score", json=comments("a")).status_code == 401
        assert c.post("/v1/score", json=comments("a"), headers={"X-API-Key": key + "x"}).status_code == 401
        assert c.post("/v1/score", json=comments("a"), headers={"X-API-Key": key}).status_code == 200
        assert c.get("/v1/queue", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert c.get("/review.json").status_code == 401
        assert c.get("/healthz").status_code == 200 and c.get("/review").status_code == 200


def test_a_key_file_with_a_plain_key_is_refused(tmp_path):
    from comment_stance.errors import DataError

    path = tmp_path / "keys.txt"
    path.write_text("my-secret-key\n")
    with pytest.raises(DataError, match="line 1"):
        read_key_file(path)


# -- the review desk ----------------------------------------------------------------------------
def test_queue_is_least_confident_first_and_filters(client):
    client.post("/v1/queue", json={"comments": [
        {"id": "a1", "text": "Sign it already, it is long overdue.", "article_id": "art0"},
        {"id": "a2", "text": "meh", "article_id": "art0"},
        {"id": "b1", "text": "Only if the refugees are protected.", "article_id": "art1", "target": "Pact B"},
    ]})
    items = client.get("/v1/queue").json()["items"]
    confidences = [x["confidence"] for x in items]
    assert confidences == sorted(confidences) and len(items) == 3
    assert {x["id"] for x in client.get("/v1/queue", params={"article": "art0"}).json()["items"]} == {"a1", "a2"}
    label = items[0]["label"]
    assert all(x["label"] == label for x in client.get("/v1/queue", params={"label": label}).json()["items"])
    twin = client.get("/review.json").json()
    assert twin["queue"]["total"] == 3 and twin["labels"] == ["conditional", "skeptical", "supportive"]
    assert {a["article_id"] for a in twin["articles"]} == {"art0", "art1"}


def test_replies_are_shown_with_their_parent(client):
    client.post("/v1/queue", json={"comments": [{"id": "p", "text": "The pact is a disgrace."}]})
    client.post("/v1/queue", json={"comments": [{"id": "r", "text": "Agreed.", "parent_id": "p"}]})
    reply = [x for x in client.get("/v1/queue").json()["items"] if x["id"] == "r"][0]
    assert reply["parent_text"] == "The pact is a disgrace."


def test_decisions_survive_a_restart_and_update_counts(model, tmp_path):
    db = tmp_path / "desk.sqlite"
    with TestClient(create_app(model, db=db)) as c:
        c.post("/v1/queue", json={"comments": [{"id": "x", "text": "Sign it.", "article_id": "a"},
                                               {"id": "y", "text": "No way.", "article_id": "a"}]})
        label = c.get("/v1/queue").json()["items"][0]["label"]
        other = next(l for l in ("conditional", "skeptical", "supportive") if l != label)
        first = c.get("/v1/queue").json()["items"][0]["id"]
        r = c.post("/v1/decisions", json={"id": first, "label": other})
        assert r.status_code == 200 and r.json()["status"] == "corrected" and r.json()["decision"] == other
        c.post("/v1/queue", json={"comments": [{"id": first, "text": "Sign it again.", "article_id": "a"}]})
    # a new process on the same file: the decision is there, rescoring kept it
    with TestClient(create_app(model, db=db)) as c:
        decided = c.get("/v1/queue", params={"status": "decided"}).json()["items"]
        assert [(x["id"], x["decision"]) for x in decided] == [(first, other)]
        counts = {a["article_id"]: a for a in c.get("/v1/counts").json()["articles"]}["a"]
        assert counts["decided"] == 1 and counts["pending"] == 1 and counts["stances"].get(other, 0) >= 1
        assert c.post("/v1/decisions", json={"id": "nope"}).status_code == 404
        r = c.post("/v1/decisions", json={"id": first, "label": "angry"})
        assert r.status_code == 422 and "supportive" in r.json()["error"]["hint"]


def test_duplicate_ids_in_one_queue_request_are_refused(client):
    r = client.post("/v1/queue", json={"comments": [{"id": "d", "text": "a"}, {"id": "d", "text": "b"}]})
    assert r.status_code == 422 and "appears twice" in r.json()["error"]["message"]
    assert client.get("/v1/queue").json()["total"] == 0


def test_upload_queues_an_export_and_keeps_error_rows(client):
    r = client.post("/v1/upload", params={"filename": "malformed.csv"},
                    content=(EXPORTS / "malformed.csv").read_bytes())
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["rows"] == summary["scored"] + summary["errors"] and summary["errors"] >= 1
    errors = client.get("/v1/queue", params={"status": "error"}).json()
    assert errors["total"] == summary["errors"] and all(x["error"] for x in errors["items"])
    assert client.get("/v1/queue").json()["total"] == summary["scored"]
    r = client.post("/v1/upload", params={"filename": "disqus.xml"}, content=(EXPORTS / "disqus.xml").read_bytes())
    assert r.status_code == 200 and r.json()["format"] == "disqus" and r.json()["rows"] > 0


def test_bad_uploads_name_the_file(client, model):
    r = client.post("/v1/upload", params={"filename": "broken.xml"}, content=(EXPORTS / "malformed.xml").read_bytes())
    assert r.status_code == 422 and "broken.xml" in r.json()["error"]["message"]
    assert "stance-upload-" not in r.text  # the temporary file is not what the user knows
    queued = client.get("/v1/queue").json()["total"]  # complete records before the break are kept...
    assert queued == 0 or f"the {queued:,} rows before it were queued" in r.json()["error"]["message"]  # ...and said
    assert client.post("/v1/upload", params={"filename": "x.csv"}, content=b"").status_code == 422
    r = client.post("/v1/upload", params={"filename": "c.csv"}, content=(EXPORTS / "comments.csv").read_bytes(),
                    headers={"content-type": "text/plain"})  # what a cross-site form could send
    assert r.status_code == 415 and client.get("/v1/queue").json()["total"] == queued
    r = client.post("/v1/decisions", content=b'{"id": "x"}', headers={"content-type": "text/plain"})
    assert r.status_code == 422
    with TestClient(create_app(model, limits=Limits(max_upload_bytes=100))) as c:
        r = c.post("/v1/upload", params={"filename": "c.csv"}, content=(EXPORTS / "comments.csv").read_bytes())
        assert r.status_code == 413 and "--max-upload-bytes" in r.json()["error"]["hint"]


def test_corrections_flow_back_into_training(client, tmp_path):
    """score -> correct -> export -> train -> the corrected comments are predicted as corrected."""
    texts = {"e1": "The harbour plan will create jobs.", "e2": "The harbour plan wastes our money.",
             "e3": "Build the harbour only with local workers.", "e4": "Jobs jobs jobs from the harbour.",
             "e5": "Money wasted on a harbour nobody needs.", "e6": "Fine by me if locals get the work."}
    truth = {"e1": "supportive", "e2": "skeptical", "e3": "conditional", "e4": "supportive",
             "e5": "skeptical", "e6": "conditional"}
    client.post("/v1/queue", json={"comments": [{"id": k, "text": t, "article_id": "harbour"} for k, t in texts.items()]})
    before = {x["id"]: x["label"] for x in client.get("/v1/queue", params={"limit": 100}).json()["items"]}
    assert before != truth  # the first model gets some wrong: there is something to correct
    for key, label in truth.items():
        body = {"id": key} if before[key] == label else {"id": key, "label": label}
        assert client.post("/v1/decisions", json=body).status_code == 200
    export = client.get("/v1/export")
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    path = tmp_path / "decisions.jsonl"
    path.write_bytes(export.content)
    rows = [json.loads(line) for line in export.text.splitlines()]
    assert {r["id"]: r["label"] for r in rows} == truth
    corrected = client.get("/v1/export", params={"only": "corrected"}).text.splitlines()
    assert len(corrected) == sum(before[k] != v for k, v in truth.items())
    result = train(path, "tfidf-logreg", tmp_path / "retrained")
    with TestClient(create_app(result.model)) as c:
        again = c.post("/v1/score", json={"comments": [{"id": k, "text": t} for k, t in texts.items()]}).json()
    assert {x["id"]: x["label"] for x in again["results"]} == truth


# -- pages --------------------------------------------------------------------------------------
def test_pages_use_shipped_versioned_assets_only(client):
    static = REPO / "src" / "comment_stance" / "serve" / "static"
    for page in ("/review", "/targets"):
        html = client.get(page).text
        assert f"static/stance-{ASSET_VERSION}.js" in html and f"static/stance-{ASSET_VERSION}.css" in html
        assert "http://" not in html and "https://" not in html
    for asset in static.iterdir():
        assert client.get(f"/static/{asset.name}").status_code == 200
        assert "http://" not in asset.read_text() and "https://" not in asset.read_text()
    assert client.get("/", follow_redirects=False).headers["location"] == "review"


def test_help_does_not_import_the_web_stack():
    code = ("import sys; from typer.testing import CliRunner; from comment_stance.cli import app; "
            "r = CliRunner().invoke(app, ['serve', '--help']); assert r.exit_code == 0, r.output; "
            "assert '--max-batch' in r.output; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_new_key_and_bad_options(tmp_path):
    from typer.testing import CliRunner

    from comment_stance.cli import app

    path = tmp_path / "keys.txt"
    r = CliRunner().invoke(app, ["serve", "--new-key", str(path)])
    assert r.exit_code == 0
    key = r.output.split()[0]
    assert read_key_file(path) == [hash_key(key)]
    r = CliRunner().invoke(app, ["serve", "--model", str(tmp_path), "--max-batch", "0"])
    assert r.exit_code == 1 and "--max-batch" in r.output
    r = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "missing")])
    assert r.exit_code == 1 and "no such model folder" in r.output


def test_binds_to_localhost_by_default():
    import inspect

    from comment_stance.cli.serve import serve_cli

    assert inspect.signature(serve_cli).parameters["host"].default.default == "127.0.0.1"


def test_stance_serve_runs_and_keeps_decisions(model_dir, tmp_path):
    """The real command: a server process on 127.0.0.1 that scores and stores; killed, it loses nothing
    it acknowledged."""
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "desk.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-c", "from comment_stance.cli import main; main()", "serve", "--model", str(model_dir),
         "--port", str(port), "--db", str(db), "--log-level", "warning"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "stance serve did not become ready"
            time.sleep(0.2)
        r = httpx.post(url + "/v1/queue", json={"comments": [{"id": "s1", "text": "Sign it."}]})
        assert r.status_code == 200 and r.json()["results"][0]["label"]
        assert httpx.post(url + "/v1/decisions", json={"id": "s1", "label": "skeptical"}).status_code == 200
    finally:
        process.kill()  # no clean shutdown: what was acknowledged must already be on disk
        process.wait(20)
    import sqlite3

    with sqlite3.connect(db) as con:  # acknowledged before the process was stopped: it is in the file
        assert con.execute("SELECT decision FROM comments WHERE id='s1'").fetchone() == ("skeptical",)


def test_local_server_answers_only_to_local_host_names(model):
    from comment_stance.serve.server import default_hosts

    hosts = default_hosts("127.0.0.1", None)
    with TestClient(create_app(model, allowed_hosts=hosts), base_url="http://localhost:8000") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/healthz", headers={"host": "127.0.0.1:8000"}).status_code == 200
        assert c.get("/healthz", headers={"host": "[::1]:8000"}).status_code == 200
        r = c.get("/v1/model", headers={"host": "evil.example:8000"})
        assert r.status_code == 421 and "--allowed-host" in r.json()["error"]["hint"]
    assert default_hosts("127.0.0.1", ["desk.example.org"])[-1] == "desk.example.org"
    assert default_hosts("0.0.0.0", None) is None
