"""Drive an exported page (`hf-gru-seq2seq-export-web`) in headless Chromium, as a user would: a static server on
127.0.0.1, the system Chromium under Playwright, typing into `#source`, clicking `#translate`, reading `#target`.
Shared by the browser test (tests/test_web.py) and the web benchmark (`python -m benchmarks web`)."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

# Flags that work on a machine without a GPU, a sandbox or the network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STATES = ("ready", "done", "error")


def chromium_path() -> str | None:
    """The system Chromium (Debian's `chromium`), or $CHROMIUM, or None."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


class QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm"}

    def log_message(self, *args):  # the test's output stays readable
        pass


@contextmanager
def serve(folder):
    """`python -m http.server` on 127.0.0.1 (a free port) for `folder`; yields the base URL."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def chromium():
    """A headless system Chromium under Playwright; yields the browser."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url: str, timeout_s: float = 120, viewport=None):
    """A new tab on `url`, once the page has loaded its model (state `ready`) or failed (`error`)."""
    page = browser.new_page(viewport=viewport or {"width": 900, "height": 900})
    messages = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    page.console_messages = messages
    page.goto(url)
    wait_for_state(page, STATES, timeout_s)
    return page


def wait_for_state(page, states, timeout_s: float = 120) -> str:
    page.wait_for_function("states => states.includes(document.body.dataset.state)", arg=list(states),
                           timeout=timeout_s * 1000)
    return page.evaluate("document.body.dataset.state")


def type_text(page, text: str) -> None:
    """Replace the text box's content by `text`, typed key by key (Enter between lines), as a user types it."""
    source = page.locator("#source")
    source.fill("")
    source.press_sequentially(text, timeout=(30 + 0.03 * len(text)) * 1000)  # a busy machine types slowly


def translate(page, beam: bool, timeout_s: float = 300) -> dict:
    """Click Translate with beam search on or off; the output lines, the warnings and the page's own timing."""
    page.locator("#beam").set_checked(beam) if page.locator("#beam").is_enabled() else None
    page.locator("#translate").click()
    state = wait_for_state(page, ("done", "error"), timeout_s)
    if state == "error":
        raise RuntimeError(page.locator("#error").text_content() + "\n" + "\n".join(page.console_messages))
    return {"lines": page.locator("#target").input_value().split("\n"),
            "warnings": page.locator("#warnings").text_content(),
            "seconds": float(page.locator("#timing").get_attribute("data-seconds"))}
