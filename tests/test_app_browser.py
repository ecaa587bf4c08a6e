"""examples/app.py in a real browser: start the Gradio app on a loopback port, drive Debian's headless Chromium
with Selenium, submit an example, and find the highlighted entities and a relation row (== the pipeline's answer).
And ``ldnet-serve``'s ``/docs`` rendered offline: Swagger UI with its assets from the server itself (Chromium resolves
no host but loopback).

Screenshot: the test saves one to ``$LDNET_APP_SCREENSHOT`` (default: its tmp dir). The README's image is made with
the `make demo` model (trained without instructions, as `make app` starts it):

    LDNET_APP_MODEL=runs/demo/model LDNET_APP_ARGS=--no-instruction LDNET_APP_SCREENSHOT=docs/img/app.png \\
        .venv/bin/python -m pytest -q tests/test_app_browser.py
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from _serving import save_tiny_model

from serving.backends import load_pipeline
from serving.server import model_info

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
APP_ARGS = shlex.split(os.environ.get("LDNET_APP_ARGS", ""))
CHROME_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--window-size=1400,1000",
    # offline: no host resolves but loopback (a page that needs a CDN renders blank)
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

selenium = pytest.importorskip("selenium", reason="selenium is in the `browser` extra")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium + chromium-driver are not installed (`make venv` as root installs them; "
    "nothing downloads a browser build)",
)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def load_app_module():
    spec = importlib.util.spec_from_file_location("ldnet_example_app", REPO / "examples" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, minilm) -> Path:
    given = os.environ.get("LDNET_APP_MODEL")
    if given:
        return Path(given)
    return save_tiny_model(tmp_path_factory.mktemp("app") / "tiny", minilm)


@pytest.fixture(scope="module")
def app_url(model_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("applog") / "app.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(REPO / "examples" / "app.py"), "--model", str(model_dir),
                                 "--port", str(port), "--threads", "1", *APP_ARGS], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the app exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the app did not come up:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def test_app_highlights_entities_and_lists_relations(app_url, browser, model_dir, tmp_path):
    app = load_app_module()
    ie = load_pipeline(model_dir)
    _, card, _ = model_info(ie)
    schema = app.trained_schema(card)
    schema = {k: v for k, v in schema.items() if k in ("ent", "rel", "event") and v}
    threshold = float(ie.processor.threshold)
    instruction = "" if app.starts_without_instruction(card, "--no-instruction" in APP_ARGS) else None
    # the first example on the page for which the model finds an entity and a relation
    examples = app.example_texts()
    picks = [(i, t, ie(t, schema=schema, threshold=threshold, instruction=instruction)) for i, t in enumerate(examples)]
    index, text, ans = next((p for p in picks if p[2].get("ent") and p[2].get("rel")), (None, None, None))
    assert index is not None, "no example yields an entity and a relation with this model"

    browser.get(app_url)
    wait = WebDriverWait(browser, 90)
    wait.until(lambda d: d.find_elements(By.ID, "extract"))
    buttons = browser.find_elements(By.CSS_SELECTOR, "#examples button")
    assert len(buttons) == len(examples)
    buttons[index].click()
    textarea = browser.find_element(By.CSS_SELECTOR, "#text textarea")
    wait.until(lambda d: textarea.get_attribute("value") == text)
    browser.find_element(By.ID, "extract").click()

    # highlighted spans == the pipeline's entities (the non-overlapping, best-scored ones), with type and score
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#entities .token.highlighted"))
    shown = [
        (el.find_element(By.CSS_SELECTOR, ".text").get_attribute("textContent").strip(),
         el.find_element(By.CSS_SELECTOR, ".label").get_attribute("textContent").strip())
        for el in browser.find_elements(By.CSS_SELECTOR, "#entities .token.highlighted")
    ]
    expected = [(text[e["start"]:e["end"]].strip(), e["entity"]) for e in app.highlight(text, ans["ent"])["entities"]]
    assert shown == expected

    # the first relation row: kind, type and "head → tail" as the pipeline answered
    row = app.structure_rows(ans)[0]
    cell = "#relations [data-testid='cell-0-{}']"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, cell.format(2)))
    got = [browser.find_element(By.CSS_SELECTOR, cell.format(c)).get_attribute("textContent").strip()
           for c in range(3)]
    assert got == [str(x) for x in row[:3]]

    shot = Path(os.environ.get("LDNET_APP_SCREENSHOT") or tmp_path / "app.png")
    if not shot.is_absolute():
        shot = REPO / shot
    shot.parent.mkdir(parents=True, exist_ok=True)
    browser.execute_script("window.scrollTo(0, 0)")
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


@pytest.fixture(scope="module")
def serve_url(model_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("servelog") / "serve.log"
    exe = Path(sys.executable).with_name("ldnet-serve")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "serving.server"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([*cmd, str(model_dir), "--port", str(port), "--threads", "1"], stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"ldnet-serve exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"ldnet-serve did not come up:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_docs_render_offline(serve_url, browser):
    browser.get(serve_url + "/docs")
    wait = WebDriverWait(browser, 60)
    # Swagger UI rendered the OpenAPI schema: one operation block per endpoint
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock")) >= 3)
    paths = [el.get_attribute("textContent").strip().replace("\u200b", "")
             for el in browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock-summary-path")]
    assert set(paths) == {"/extract", "/health", "/info"}, paths
    assert browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text.startswith("LDNet universal IE")
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(serve_url) for u in loaded), loaded
    assert any(u.endswith("/static-offline-docs/swagger-ui-bundle.js") for u in loaded)
