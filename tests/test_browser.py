"""The review page in a real browser: headless Chromium (Debian's package) driven by Playwright,
against a real uvicorn server on 127.0.0.1.

These tests never skip: without Chromium or Playwright they fail and say what to install.
Set STANCE_SCREENSHOT=PATH to also save a screenshot of the page there (docs/img/review-page.png).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from .conftest import FIXTURES

CHROMIUM_HINT = ("the browser tests need Chromium and Playwright: apt-get install chromium, and "
                 "pip install -e '.[serve,test]' (no 'playwright install': the system Chromium is used)")


def _chromium() -> str:
    path = os.environ.get("STANCE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(f"no chromium on PATH: {CHROMIUM_HINT}", pytrace=False)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    try:
        import uvicorn

        from comment_stance import load_model
        from comment_stance.serve import create_app
        from comment_stance.training import train
    except ImportError as exc:
        pytest.fail(f"{exc}: {CHROMIUM_HINT}", pytrace=False)
    folder = tmp_path_factory.mktemp("browser")
    train(FIXTURES / "tiny", "tfidf-logreg", folder / "model")
    app = create_app(load_model(folder / "model"), model_dir=folder / "model", db=folder / "desk.sqlite",
                     targets={"art0": "Pact A", "art1": "Pact B"})
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the uvicorn server did not start", pytrace=False)
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"{exc}: {CHROMIUM_HINT}", pytrace=False)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server, accept_downloads=True, viewport={"width": 1280, "height": 900})
    # the page must work with no internet: any request elsewhere than this server fails the test
    outside: list[str] = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(server)
                  else (outside.append(route.request.url), route.abort()))
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    yield page
    context.close()
    assert not outside, f"the page fetched from elsewhere: {outside}"
    assert not problems, f"script errors on the page: {problems}"


def api(server, method, path, body=None):
    import httpx

    r = httpx.request(method, server + path, json=body, timeout=30)
    assert r.status_code < 400, r.text
    return r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text


def queue(server, *items):
    return api(server, "POST", "/v1/queue", {"comments": list(items)})


def test_queue_is_shown_least_confident_first(page, server):
    queue(server,
          {"id": "q1", "text": "Sign it already, it is long overdue.", "article_id": "art0"},
          {"id": "q2", "text": "Only if the refugees are protected.", "article_id": "art0"},
          {"id": "q3", "text": "Exactly.", "article_id": "art1", "parent_id": "q1"})
    page.goto("/review")
    page.wait_for_selector("#queue .item")
    expected = [x["id"] for x in api(server, "GET", "/v1/queue?limit=50")["items"]]
    shown = page.eval_on_selector_all("#queue .item", "els => els.map(e => e.dataset.id)")
    assert shown == expected
    reply = page.locator('#queue .item[data-id="q3"]')
    assert "Sign it already" in reply.locator(".parent").inner_text()   # the parent, shown with the reply
    assert page.locator("#counts tbody tr[data-article='art0']").count() == 1
    page.select_option("#f-article", "art1")
    page.wait_for_function("document.querySelectorAll('#queue .item').length === 1")
    assert page.locator("#queue .item").first.get_attribute("data-id") == "q3"


def test_correction_by_keyboard(page, server):
    queue(server, {"id": "k1", "text": "Hmm, we will see about that pact.", "article_id": "art9"},
          {"id": "k2", "text": "Well, maybe the pact works.", "article_id": "art9"})
    page.goto("/review?")
    page.wait_for_selector("#queue .item")
    page.select_option("#f-article", "art9")
    page.wait_for_function("document.querySelectorAll('#queue .item').length === 2")
    labels = api(server, "GET", "/v1/model")["labels"]
    first, second = page.eval_on_selector_all("#queue .item", "els => els.map(e => e.dataset.id)")
    page.keyboard.press("j")   # to the second comment
    page.wait_for_selector(f'#queue .item.selected[data-id="{second}"]')
    page.keyboard.press("k")   # and back to the first
    page.wait_for_selector(f'#queue .item.selected[data-id="{first}"]')
    model_label = api(server, "GET", "/v1/queue?status=all&article=art9")["items"]
    model_label = {x["id"]: x["label"] for x in model_label}[first]
    choice = next(i for i, label in enumerate(labels) if label != model_label)
    page.keyboard.press(str(choice + 1))
    page.wait_for_selector("#message:has-text('Saved')")
    page.wait_for_function("document.querySelectorAll('#queue .item').length === 1")
    page.keyboard.press("Enter")   # accept the model's label of the other one
    page.wait_for_function("document.querySelectorAll('#queue .item').length === 0")
    decided = {x["id"]: x for x in api(server, "GET", "/v1/queue?status=decided&article=art9")["items"]}
    assert decided[first]["decision"] == labels[choice] and decided[first]["status"] == "corrected"
    assert decided[second]["status"] == "accepted"


def test_counts_update_as_comments_come_in(page, server):
    page.goto("/review")
    page.wait_for_selector("#counts tbody tr")
    assert page.locator("#counts tbody tr[data-article='live']").count() == 0
    queue(server, {"id": "live1", "text": "Sign it.", "article_id": "live"})
    page.wait_for_selector("#counts tbody tr[data-article='live']", timeout=10_000)   # no reload: the page polls
    cells = page.locator("#counts tbody tr[data-article='live'] td.n").all_inner_texts()
    assert sum(int(c) for c in cells[:-2]) == 1


def test_upload_queues_an_export_and_lists_error_rows(page, server):
    page.goto("/review")
    page.set_input_files("#upload-file", str(FIXTURES / "exports" / "malformed.csv"))
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#message:has-text('Queued')")
    message = page.inner_text("#message")
    assert "could not be scored" in message
    page.wait_for_function("document.querySelectorAll('#errors li').length > 0")
    errors = page.locator("#errors li").all_inner_texts()
    assert any("malformed.csv" in e and "line" in e for e in errors)


def test_export_downloads_the_decisions(page, server):
    queue(server, {"id": "x1", "text": "Never sign it.", "article_id": "exp"})
    api(server, "POST", "/v1/decisions", {"id": "x1", "label": "conditional"})
    page.goto("/review")
    page.wait_for_selector("#export")
    with page.expect_download() as info:
        page.click("#export")
    rows = [json.loads(line) for line in Path(info.value.path()).read_text().splitlines()]
    assert {"id": "x1", "text": "Never sign it.", "label": "conditional"}.items() <= \
        next(r for r in rows if r["id"] == "x1").items()
    shot = os.environ.get("STANCE_SCREENSHOT")
    if shot:
        page.select_option("#f-article", "")
        page.wait_for_selector("#queue .item")
        page.screenshot(path=shot, full_page=False)


def test_targets_page_edits_the_mapping(page, server):
    page.goto("/targets")
    page.wait_for_selector("#targets tbody tr")
    page.click("#add-row")
    page.locator("#targets tbody tr").last.locator(".t-key").fill("art-new")
    page.locator("#targets tbody tr").last.locator(".t-target").fill("Pact B")
    page.click("#save")
    page.wait_for_selector("#message:has-text('Saved')")
    assert api(server, "GET", "/v1/targets")["mapping"]["art-new"] == "Pact B"


def test_the_page_asks_for_a_key_when_keys_are_required(browser, tmp_path):
    """With --api-key-file the page shows a key field, and works once the key is typed in."""
    import uvicorn

    from comment_stance import load_model
    from comment_stance.serve import create_app
    from comment_stance.serve.keys import add_key
    from comment_stance.training import train

    train(FIXTURES / "tiny", "tfidf-logreg", tmp_path / "model")
    key = add_key(tmp_path / "keys.txt")
    app = create_app(load_model(tmp_path / "model"), db=tmp_path / "desk.sqlite", api_keys=tmp_path / "keys.txt")
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        assert thread.is_alive(), "the uvicorn server did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        r = httpx.post(url + "/v1/queue", json={"comments": [{"id": "key1", "text": "Sign it."}]},
                       headers={"X-API-Key": key})
        assert r.status_code == 200
        context = browser.new_context(base_url=url)
        page = context.new_page()
        page.goto("/review")
        page.wait_for_selector("#message:has-text('API key')")
        assert page.locator("#api-key").is_visible()
        assert page.locator("#queue .item").count() == 0
        page.fill("#api-key", key)
        page.press("#api-key", "Enter")
        page.locator("#api-key").dispatch_event("change")
        page.wait_for_selector('#queue .item[data-id="key1"]')
        context.close()
    finally:
        srv.should_exit = True
        thread.join(10)
