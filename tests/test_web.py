"""The web page in a real headless Chromium (Debian's package, driven by Playwright) against a
real `llm-mcp serve` on loopback with a tiny model, a token and random adapters.

Set LLM_MCP_SCREENSHOTS=DIR to keep a screenshot of each view (docs/img/ holds the committed ones).
Without a browser the tests skip, saying why; CI sets LLM_MCP_REQUIRE_BROWSER=1 so they fail instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import httpx2
import pytest

from conftest import REPO, Server, random_adapter

TOKEN = "web-test-token-0123456789"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = os.environ.get("LLM_MCP_SCREENSHOTS")


def _need_browser():
    if importlib.util.find_spec("playwright") is None:
        reason = "Playwright for Python is not installed (pip install playwright)"
    else:
        reason = None if CHROMIUM else "no chromium on PATH (apt-get install chromium)"
    if reason:
        if os.environ.get("LLM_MCP_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tiny_llama, tmp_path_factory):
    home = tmp_path_factory.mktemp("web-home")
    random_adapter(tiny_llama, home / "adapters" / "alpha", seed=1)
    random_adapter(tiny_llama, home / "adapters" / "beta", seed=2)
    data = home / "data"
    data.mkdir()
    lines = (REPO / "examples" / "train.jsonl").read_text().splitlines(keepends=True)
    (data / "train.jsonl").write_text("".join(lines[:24]))
    shutil.copy(REPO / "examples" / "tools.json", data / "tools.json")
    (data / "cases.jsonl").write_text("".join((REPO / "examples" / "test.jsonl").read_text().splitlines(keepends=True)[:4]))
    good = json.loads(lines[0])
    (data / "broken.jsonl").write_text("\n".join([
        json.dumps(good), "{not json", json.dumps({**good, "tool_calls": [{"name": "get_wether", "arguments": {}}]})]) + "\n")
    s = Server(tiny_llama, home, "--adapter", "alpha", "--max-new-tokens", "64", env={"LLM_MCP_TOKEN": TOKEN})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/ui")
    page.fill("#token", TOKEN)
    page.click("#login-form button")
    page.wait_for_selector("#adapter-table tbody tr")
    yield page
    context.close()
    assert not errors, errors  # no uncaught script error on any view


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_without_the_token_every_api_route_is_401_and_the_page_says_how_to_log_in(server, browser, tmp_path):
    from llm_mcp.serve import web

    # every route the page's module defines (its handlers are never called here)
    api = [(method, re.sub(r"\{\w+\}", "alpha", r.path)) for r in web.routes(SimpleNamespace(home=tmp_path))
           for method in r.methods - {"HEAD"} if r.path.startswith("/api")]
    assert len(api) >= 20
    for method, path in api:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = httpx2.request(method, server.url + path, headers=headers,
                                    **({"json": {}} if method == "POST" else {}))
            assert answer.status_code == 401, (method, path, headers)
    # the page itself holds no data; it asks for the token and says where it comes from
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for_selector("#login:not([hidden])")
    assert "LLM_MCP_TOKEN" in page.inner_text("#login")
    assert page.is_hidden("#adapters")
    page.fill("#token", "wrong")
    page.click("#login-form button")
    page.wait_for_selector("#login-error:has-text('refused')")
    shot(page, "login")
    page.close()


def test_a_foreign_origin_or_host_gets_what_mcp_gives_it(server):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    evil = httpx2.post(server.url + "/api/adapters/alpha/unload", json={},
                       headers={**auth, "Origin": "http://evil.example"})
    assert evil.status_code == 403
    rebound = httpx2.get(server.url + "/api/adapters", headers={**auth, "Host": "evil.example"})
    assert rebound.status_code == 421
    form = httpx2.post(server.url + "/api/adapters/alpha/unload", content=b"{}",
                       headers={**auth, "Content-Type": "text/plain"})
    assert form.status_code == 400  # a form post from another page cannot pass for JSON
    assert httpx2.get(server.url + "/api/adapters/alpha", headers=auth).json()["loaded"] is True


def test_the_adapters_list_renders_from_the_store_and_loads_and_unloads(page):
    rows = page.locator("#adapter-table tbody tr")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.name)")) == ["alpha", "beta"]
    alpha, beta = page.locator("tr[data-name=alpha]"), page.locator("tr[data-name=beta]")
    assert alpha.locator("td").nth(1).inner_text() == "yes" and beta.locator("td").nth(1).inner_text() == "no"
    shot(page, "adapters")
    beta.locator("button", has_text="Load").click()
    page.wait_for_selector("tr[data-name=beta] button:has-text('Unload')")
    beta.locator("button", has_text="Card").click()
    assert '"r": 4' in page.inner_text("#card-body")  # PEFT's config: a random adapter has no card
    assert beta.locator("td").nth(4).inner_text().startswith("r=4")
    page.locator("tr[data-name=beta] button:has-text('Unload')").click()
    page.wait_for_selector("tr[data-name=beta] button:has-text('Load')")


def test_a_training_job_from_the_form_shows_its_curve_growing_and_survives_a_reload(page, server):
    page.click("nav a[data-view=training]")
    form = page.locator("#train-form")
    form.locator("input[name=name]").fill("web1")
    form.locator("input[name=dataset]").fill("data/train.jsonl")
    form.locator("input[name=tools]").fill("data/tools.json")
    form.locator("select[name=preset]").select_option("classic")
    form.locator("input[name='lora.r']").fill("0")  # checked by the config before anything starts
    page.wait_for_selector("#train-check.bad")
    assert "lora.r" in page.inner_text("#train-check")  # the config's own message, naming the key
    form.locator("input[name='lora.r']").fill("4")
    form.locator("input[name=max_steps]").fill("300")
    form.locator("input[name=micro_batch_size]").fill("4")
    form.locator("input[name=learning_rate]").fill("1e-2")  # a tiny random model: a curve that falls
    form.locator("textarea[name=more]").fill("precision=fp32\nsave_every=5")
    page.wait_for_selector("#train-check.good")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**#training/*")
    job_id = page.url.rsplit("/", 1)[1]
    points = lambda: int(page.get_attribute("#loss-plot path.loss", "data-points") or 0)  # noqa: E731
    page.wait_for_function("() => Number(document.querySelector('#loss-plot path.loss')?.dataset.points) >= 3",
                           timeout=120_000)
    before = points()
    page.reload()  # the tab keeps its token; the stream starts again, the steps so far replayed
    page.wait_for_function(f"() => Number(document.querySelector('#loss-plot path.loss')?.dataset.points) > {before}",
                           timeout=120_000)
    assert "status: running" in page.inner_text("#job-status")
    page.wait_for_function("() => Number(document.querySelector('#loss-plot path.loss')?.dataset.points) >= 7",
                           timeout=120_000)  # past the step-5 checkpoint
    page.click("#job-cancel")
    page.wait_for_selector("#job-status:has-text('cancelled')", timeout=60_000)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    job = httpx2.get(f"{server.url}/api/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "cancelled" and len(job["steps"]) >= points() > before
    assert job["preset"] == "classic" and "--preset classic" in job["log_tail"]
    # resume from the page: the same job continues from its checkpoint, and the curve with it
    stopped = max(s["step"] for s in job["steps"])
    page.click("#job-resume")
    page.wait_for_function(f"() => Number(document.querySelector('#loss-plot path.loss')?.dataset.points) > {points()}"
                           " && document.querySelector('#job-status').textContent.includes('running')",
                           timeout=120_000)
    page.wait_for_selector("#job-figures dd")
    shot(page, "training")
    page.click("#job-cancel")
    page.wait_for_selector("#job-status:has-text('cancelled')", timeout=60_000)
    job = httpx2.get(f"{server.url}/api/jobs/{job_id}", headers=auth).json()
    assert job["resumed"] and max(s["step"] for s in job["steps"]) > stopped
    # Last-Event-ID: only the steps after it
    with httpx2.stream("GET", f"{server.url}/api/jobs/{job_id}/events",
                       headers={**auth, "Last-Event-ID": "2"}) as stream:
        ids = [int(line[4:]) for line in stream.iter_lines() if line.startswith("id: ")]
    assert ids == [s["step"] for s in job["steps"] if s["step"] > 2]
    assert page.is_enabled("#job-resume") and page.is_disabled("#job-cancel")


def test_a_playground_reply_with_a_tool_call_shows_a_call_card(page):
    page.click("nav a[data-view=playground]")
    page.fill("#chat-form input[name=tools_path]", "data/tools.json")
    page.click("#tools-load")
    page.wait_for_selector("#chat-form select[name=tool_choice] option[value='fn:get_weather']", state="attached")
    page.select_option("#chat-form select[name=model]", label="alpha (adapter)")
    page.select_option("#chat-form select[name=model2]", index=1)  # the base, side by side
    page.select_option("#chat-form select[name=tool_choice]", "fn:get_weather")
    page.fill("#chat-form textarea[name=message]", "Is it raining in Lisbon?")
    page.click("#chat-form button[type=submit]")
    cards = page.locator(".reply")
    assert cards.count() == 2
    page.wait_for_selector(".reply:nth-child(2) .call", timeout=60_000)
    page.wait_for_selector(".reply:nth-child(1) .call", timeout=60_000)
    call = page.locator(".reply").first.locator(".call").first
    assert call.locator("code").inner_text() == "get_weather"
    assert "location" in call.locator("th").all_inner_texts()  # the schema's required argument
    shot(page, "playground")


def test_an_evaluation_report_shows_the_models_side_by_side_and_the_failure_diff(page):
    page.click("nav a[data-view=evals]")
    form = page.locator("#eval-form")
    form.locator("input[name=dataset]").fill("data/cases.jsonl")
    form.locator("input[name=limit]").fill("4")
    form.locator("input[name=model][value=alpha]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#report-table thead th:has-text('alpha'), #eval-started:has-text('failed')", timeout=120_000)
    assert not page.inner_text("#eval-started"), page.inner_text("#eval-started")
    heads = page.locator("#report-table thead th").all_inner_texts()
    assert heads == ["metric", "base", "alpha"]
    assert page.locator("#report-table tbody tr").first.inner_text().split() == ["examples", "4", "4"]
    failure = page.locator(".failure").first  # a random model fails: its diff is shown
    assert failure.locator("strong", has_text="request").count() == 1
    assert failure.locator("del, ins").count() > 0
    shot(page, "evaluations")


def test_a_broken_dataset_shows_its_line_numbers(page, tmp_path):
    page.click("nav a[data-view=datasets]")
    page.fill("#validate-form input[name=path]", "data/broken.jsonl")
    page.fill("#validate-form input[name=tools_path]", "data/tools.json")
    page.click("#validate-form button[type=submit]")
    page.wait_for_selector("#issue-table:not([hidden]) tbody tr")
    lines = page.locator("#issue-table tbody tr td:first-child").all_inner_texts()
    assert "2" in lines and "3" in lines and "1" not in lines
    assert "errors" in page.inner_text("#dataset-status")
    # an upload lands in the data directory and validates
    upload = tmp_path / "web-upload.jsonl"
    upload.write_text((REPO / "examples" / "train.jsonl").read_text().splitlines(keepends=True)[0])
    page.set_input_files("#upload-form input[type=file]", str(upload))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#dataset-status:has-text('saved data/web-upload.jsonl')")
    page.fill("#validate-form input[name=tools_path]", "data/tools.json")
    page.click("#validate-form button[type=submit]")
    page.wait_for_selector("#dataset-status:has-text('no errors')")
    shot(page, "datasets")


def test_the_page_is_usable_in_a_narrow_window(browser, server):
    context = browser.new_context(viewport={"width": 400, "height": 800})
    page = context.new_page()
    page.goto(server.url + "/ui")
    page.fill("#token", TOKEN)
    page.click("#login-form button")
    page.wait_for_selector("#adapter-table tbody tr")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400  # nothing pushes the page sideways; wide tables scroll in their box
    assert page.locator("nav a").count() == 5 and page.locator("nav a").last.is_visible()
    context.close()


def test_bad_input_to_the_page_routes_is_a_clear_4xx(server, tmp_path):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    post = lambda path, body: httpx2.post(server.url + path, json=body, headers=auth)  # noqa: E731
    outside = tmp_path / "evil.yaml"
    outside.write_text("learning_rate: 1\n")
    for preset in ["../../../../" + str(outside.with_suffix("")), str(outside.with_suffix("")), 3]:
        found = post("/api/jobs/check", {"options": {}, "preset": preset}).json()
        assert not found["ok"] and "no preset named" in found["error"]  # a name, never a path
        assert post("/api/jobs", {"dataset": "data/train.jsonl", "name": "x", "preset": preset}).status_code == 400
    assert httpx2.get(server.url + "/api/evals/..", headers=auth).status_code == 404
    for name in ["a.jsonl\n", "../a.jsonl", ".hidden.jsonl", "a.txt"]:
        assert post("/api/datasets", {"name": name, "text": "{}"}).status_code == 400, name
    surrogate = httpx2.post(server.url + "/api/datasets", content=b'{"name": "s.jsonl", "text": "\\ud800"}',
                            headers={**auth, "Content-Type": "application/json"})
    assert surrogate.status_code == 400 and "Unicode" in surrogate.json()["error"]["message"]
    listed = [d["path"] for d in httpx2.get(server.url + "/api/datasets", headers=auth).json()]
    assert "data/s.jsonl" not in listed and not any("part" in d for d in listed)  # nothing half-written
    assert post("/api/datasets", {"name": "train.jsonl", "text": "{}"}).status_code == 400  # exists
    for body in [{"dataset": "data/cases.jsonl", "models": []}, {"dataset": "data/cases.jsonl", "models": [None, None]},
                 {"dataset": "data/cases.jsonl", "max_new_tokens": 10_000}, {"dataset": "data/cases.jsonl", "limit": True}]:
        assert post("/api/evals", body).status_code == 400, body
    assert post("/api/adapters/nope/load", {}).status_code == 404
    assert httpx2.get(server.url + "/api/jobs/x/events?after=²", headers=auth).status_code == 404
    page = httpx2.get(server.url + "/ui")
    assert page.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert httpx2.get(server.url + "/ui", headers={"Host": "evil.example"}).status_code == 421
