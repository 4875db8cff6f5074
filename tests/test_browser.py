"""The three pages in a real browser (Playwright with the system Chromium)
against a real ``webchat-sim serve``: a customer in the widget chats with an
agent in the console while the dashboard watches; the widget alone with an
autopilot agent, by keyboard, after a reload and on a phone; the dashboard
behind an API key.

Chromium: ``WEBCHAT_SIM_CHROMIUM`` or the usual system paths
(``/usr/bin/chromium`` …); nothing downloads a browser (never ``playwright
install``). Without one the tests skip, unless ``WEBCHAT_SIM_REQUIRE_BROWSER=1``
(CI), which makes that a failure. Screenshots go to ``WEBCHAT_SIM_ARTIFACTS``
(default: the test's tmp dir); with ``WEBCHAT_SIM_UPDATE_SCREENSHOTS=1`` the
documentation's ``docs/img/*.png`` are rewritten too. Every frame the pages
send is checked against UltraCart's SDK model and the project's schema.
127.0.0.1 and random ports only; every wait is bounded."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from websockets.sync.client import connect

from tests.cli import ROOT
from tests.sdk import validate_frame_bytes
from tests.test_http import Mock, _http, _start, _stop


def _start_frame(question: str) -> str:
    start = {"question": question}
    frame = {"type": "event", "event_type": "webchat start conversation", "event_engage_customer": start}
    return orjson.dumps(frame).decode()


def _customer_auth(mock: Mock, key: str) -> dict[str, Any]:
    headers = {"x-ultracart-simple-key": key}
    status, body = _http("POST", mock.rest_url + "/webchat-sim/customer_auth", {"name": "Lee"}, **headers)
    assert status == 200, body
    auth: dict[str, Any] = body["customer_auth"]
    return auth

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, WebSocket

pytestmark = pytest.mark.timeout(90)

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CANDIDATES = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
)
WAIT_MS = 15_000
"""Longest wait for anything on a page (a slow 2-CPU machine)."""
KEY = "k-browser"


def _chromium() -> str | None:
    chosen = os.environ.get("WEBCHAT_SIM_CHROMIUM")
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    for path in CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _unavailable(reason: str) -> None:
    if os.environ.get("WEBCHAT_SIM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (WEBCHAT_SIM_REQUIRE_BROWSER=1)")
    pytest.skip(f"{reason}; set WEBCHAT_SIM_CHROMIUM, or WEBCHAT_SIM_REQUIRE_BROWSER=1 to fail instead")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    path = _chromium()
    if path is None:
        chosen = os.environ.get("WEBCHAT_SIM_CHROMIUM")
        where = f"WEBCHAT_SIM_CHROMIUM={chosen}" if chosen else ", ".join(CANDIDATES) + " and $PATH"
        _unavailable(f"no Chromium executable found (looked at {where})")
    assert path is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("WEBCHAT_SIM_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _screenshot(page: Page, folder: Path, name: str, *, docs: bool = False) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    if docs and os.environ.get("WEBCHAT_SIM_UPDATE_SCREENSHOTS") == "1":
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ROOT / "docs" / "img" / f"{name}.png"), full_page=True)


@dataclass
class Wire:
    """Every websocket frame a page sent and got."""

    sent: list[str] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("websocket", self._socket)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", lambda m: self.problems.append(f"console: {m.text}") if m.type == "error" else None)

    def _socket(self, ws: WebSocket) -> None:
        ws.on("framesent", lambda payload: self.sent.append(payload if isinstance(payload, str) else payload.decode()))
        ws.on("framereceived", self._received)

    def _received(self, payload: str | bytes) -> None:
        self.received.append(orjson.loads(payload))

    def check(self) -> None:
        """Every frame sent is valid for the protocol; the server refused none of them."""
        assert self.problems == []
        for raw in self.sent:
            validate_frame_bytes(raw)
        errors = [f["error"] for f in self.received if "error" in f and "event_type" not in f]
        assert errors == []

    def kinds(self) -> set[str]:
        return {orjson.loads(raw).get("event_type") or orjson.loads(raw)["type"] for raw in self.sent}


def _page(browser: Browser, wire: Wire | None = None, *, width: int = 1280, height: int = 800) -> Page:
    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    if wire is not None:
        wire.attach(page)
    return page


def _fits(page: Page, width: int) -> None:
    """Nothing wider than the viewport (readable on a phone without side-scrolling)."""
    page.set_viewport_size({"width": width, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1


def _eventually(check: Callable[[], bool], what: str, timeout: float = WAIT_MS / 1000) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def manual() -> Iterator[Mock]:
    mock = _start("--routing", "manual", "--status-interval", "0.2", "--position-interval", "0.2")
    yield mock
    stderr = _stop(mock)
    assert "Traceback" not in stderr


# ---------------------------------------------------------------------------


def test_a_customer_chats_with_an_agent_in_the_console_while_the_dashboard_watches(
    browser: Browser, manual: Mock, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    web = manual.web_url
    agent_wire, customer_wire = Wire(), Wire()
    console, widget, dashboard = _page(browser, agent_wire), _page(browser, customer_wire), _page(browser)
    by = lambda page, testid: page.get_by_test_id(testid)  # noqa: E731

    # The agent logs in (development mode: any key) and sees its queue.
    console.goto(web + "console")
    by(console, "api-key").fill("any key will do")
    by(console, "login").click()
    queue = by(console, "queue")
    expect(queue).to_have_attribute("data-queue", "support")
    expect(by(console, "my-status")).to_have_text("you: available")
    by(console, "agent-status").select_option("busy")
    expect(by(console, "my-status")).to_have_text("you: busy")
    by(console, "agent-status").select_option("available")
    expect(by(console, "my-status")).to_have_text("you: available")
    expect(by(console, "take-next")).to_be_disabled()

    # The customer starts a chat and waits in the queue; the dashboard sees it wait.
    dashboard.goto(web)
    expect(by(dashboard, "link-websocket_url")).to_have_text(manual.websocket_url)
    widget.goto(web + "widget")
    by(widget, "name").fill("Ann Example")
    by(widget, "question").fill("Where is my order 1234?")
    by(widget, "start").click()
    position = by(widget, "queue-position")
    expect(position).to_have_attribute("data-position", "1")
    expect(position).to_contain_text("number 1 in the queue")
    expect(position).to_have_attribute("data-available", "true")
    expect(by(dashboard, "queue-row")).to_have_attribute("data-waiting", "1")
    expect(by(dashboard, "conversation-row")).to_have_count(1)
    uuid = by(dashboard, "conversation-row").get_attribute("data-conversation")
    row = dashboard.locator(f'[data-testid=conversation-row][data-conversation="{uuid}"]')
    expect(row).to_have_attribute("data-state", "queued")

    # The agent takes the next chat: the customer sees the agent join; the queue drains.
    expect(by(console, "queue-entry")).to_contain_text("Where is my order 1234?")
    by(console, "take-next").click()
    tab = by(console, "chat-tab")
    expect(tab).to_have_count(1)
    expect(tab).to_have_attribute("aria-selected", "true")
    expect(by(widget, "agent")).to_contain_text("You are chatting with Agent ")
    expect(position).to_have_attribute("data-position", "-1")
    expect(by(dashboard, "queue-row")).to_have_attribute("data-waiting", "0")
    expect(by(dashboard, "queue-row")).to_have_attribute("data-chatting", "1")
    expect(row).to_have_attribute("data-state", "engaged")
    panel = console.locator("[data-testid=chat-panel]:not([hidden])")
    chat = panel.get_by_test_id("chat-messages")
    expect(chat.locator("[data-testid=message][data-author=customer]")).to_have_count(1)
    expect(panel.get_by_test_id("chat-context")).to_contain_text("/widget")  # the widget's webchat context
    expect(panel.get_by_test_id("chat-recording")).to_contain_text("rrweb events")  # and its page recording

    # The dashboard watches the conversation: its history, then live frames.
    row.click()
    frames = by(dashboard, "frames")
    expect(frames.locator("[data-testid=frame][data-dir=history]")).to_have_count(1)

    # Typing both ways, messages both ways, read ticks both ways.
    by(widget, "message-input").press_sequentially("It was due on Mon")
    expect(by(console, "chat-typing")).to_contain_text("It was due on Mon")
    by(widget, "send").click()
    expect(chat.locator("[data-testid=message][data-author=customer]")).to_have_count(2)
    expect(by(console, "chat-typing")).to_have_text("")
    by(console, "reply-input").press_sequentially("Let me check")
    expect(by(widget, "typing")).to_be_visible()
    expect(by(widget, "typing")).to_contain_text("is typing")
    by(console, "reply-send").click()
    agent_message = by(widget, "messages").locator("[data-testid=message][data-author=agent]")
    expect(agent_message).to_have_count(1)
    expect(agent_message).to_contain_text("Let me check")
    expect(by(widget, "typing")).to_be_hidden()
    by(console, "mark-read").click()
    ticks = by(widget, "messages").locator("[data-testid=tick]")
    expect(ticks).to_have_count(2)
    for i in range(2):
        expect(ticks.nth(i)).to_have_attribute("data-status", "read")
    expect(chat.locator("[data-testid=tick]")).to_have_attribute("data-status", "read")  # the widget read it
    expect(frames.locator("[data-testid=frame][data-dir=in]").first).to_be_visible()
    expect(frames.locator("[data-testid=frame][data-dir=out]").first).to_be_visible()

    # A canned message into the reply box; a coupon and an item into the customer's cart.
    by(console, "canned-filter").fill("en-greeting")
    by(console, "canned-message").click()
    expect(by(console, "reply-input")).to_have_value("Hi! Thanks for your patience.")
    by(console, "reply-send").click()
    expect(agent_message).to_have_count(2)
    by(console, "coupon-input").fill("SAVE15")
    by(console, "push-coupon").click()
    expect(by(widget, "coupon-code")).to_have_text("SAVE15")
    by(console, "push-item").click()
    expect(by(widget, "item-card")).to_contain_text("Canvas tote bag")
    expect(by(widget, "item-card")).to_contain_text("19.99")

    # A second chat arrives in a tab of its own, with its unread count.
    with connect(manual.websocket_url + "?role=customer&name=Bea", proxy=None, open_timeout=10) as bea:
        bea.send(_start_frame("Hi?"))
        expect(by(console, "queue-entry")).to_contain_text("Hi?")
        by(console, "engage").click()
        expect(tab).to_have_count(2)
        second = tab.nth(1)
        expect(second).to_contain_text("Bea")
        expect(second.get_by_test_id("unread")).to_have_text("1")
        expect(tab.nth(0)).to_have_attribute("aria-selected", "true")  # the agent stays where it was
        second.click()
        expect(second.get_by_test_id("unread")).to_be_hidden()
        tab.nth(0).click()

    # The customer reloads the page: the chat resumes (history again, and it goes on).
    widget.reload()
    expect(by(widget, "messages").locator("[data-testid=message]")).to_have_count(4)
    expect(by(widget, "coupon-code")).to_have_text("SAVE15")  # kept by the widget: the server replays messages only
    cards = by(widget, "messages").locator("[data-testid=coupon-card] ~ [data-testid=item-card]")
    expect(cards).to_have_count(1)
    by(widget, "message-input").fill("Still here after a reload")
    by(widget, "message-input").press("Enter")
    expect(chat.locator("[data-testid=message][data-author=customer]")).to_have_count(3)
    dashboard.get_by_test_id("raw-toggle").check()
    raw = frames.locator("[data-testid=frame-raw]")
    expect(raw.last).to_be_visible()
    _eventually(lambda: "Still here after a reload" in frames.inner_text(), "the dashboard shows the live message")

    _screenshot(console, artifacts, "console", docs=True)
    _screenshot(widget, artifacts, "widget", docs=True)
    _screenshot(dashboard, artifacts, "dashboard", docs=True)

    # The customer ends the chat: everyone sees it closed.
    by(widget, "close").click()
    expect(by(widget, "ended")).to_be_visible()
    expect(by(widget, "message-input")).to_be_hidden()
    expect(tab.nth(0)).to_have_attribute("data-closed", "true")
    expect(by(console, "reply-input")).to_be_disabled()
    expect(row).to_have_attribute("data-state", "closed")

    for page, name in ((widget, "widget-phone"), (console, "console-phone"), (dashboard, "dashboard-phone")):
        _fits(page, 390)
        _screenshot(page, artifacts, name)
    customer_wire.check()
    agent_wire.check()
    assert {"webchat start conversation", "typing", "message", "read message", "webchat context", "rrweb"} <= (
        customer_wire.kinds()
    )
    assert {"engage customer", "typing", "message", "read message", "add coupon", "add item"} <= agent_wire.kinds()
    for page in (console, widget, dashboard):
        page.context.close()


def test_the_widget_alone_with_an_autopilot_agent_by_keyboard_after_a_reload_and_on_a_phone(
    browser: Browser, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    mock = _start("--agents", "1", "--pace", "fast", "--exchanges", "2", "--seed", "3")
    try:
        wire = Wire()
        widget = _page(browser, wire, width=390, height=844)
        widget.goto(mock.web_url + "widget")
        expect(widget.get_by_test_id("name")).to_be_focused()
        widget.keyboard.type("Kim")
        widget.keyboard.press("Tab")  # e-mail
        widget.keyboard.press("Tab")  # language
        widget.keyboard.press("Tab")  # question
        expect(widget.get_by_test_id("question")).to_be_focused()
        widget.keyboard.type("Do you ship to Canada?")
        widget.keyboard.press("Tab")
        expect(widget.get_by_test_id("start")).to_be_focused()
        widget.keyboard.press("Enter")
        messages = widget.get_by_test_id("messages")
        expect(widget.get_by_test_id("agent")).to_contain_text("(autopilot 1)")
        expect(messages.locator("[data-testid=message][data-author=agent]").first).to_be_visible()
        expect(widget.get_by_test_id("message-input")).to_be_focused()
        widget.keyboard.type("And how long does it take?")
        widget.keyboard.press("Enter")
        expect(messages.locator("[data-testid=message][data-author=customer]")).to_have_count(2)
        widget.reload()  # resumes from sessionStorage
        expect(messages.locator("[data-testid=message][data-author=customer]")).to_have_count(2)
        expect(messages.locator("[data-testid=message][data-author=agent]")).to_have_count(2)
        widget.get_by_test_id("message-input").fill("Thanks, that is all")
        widget.get_by_test_id("send").click()
        expect(widget.get_by_test_id("ended")).to_be_visible()  # its exchanges done, the autopilot says goodbye
        # Typing stops before the goodbye, not after it: the autopilot closes at once on a goodbye.
        kinds = [orjson.loads(raw).get("event_type") or orjson.loads(raw)["type"] for raw in wire.sent]
        assert kinds[-2:] == ["typing", "message"], kinds
        expect(widget.get_by_test_id("new-chat")).to_be_focused()
        _fits(widget, 390)
        _screenshot(widget, artifacts, "widget-autopilot-phone")
        widget.get_by_test_id("new-chat").click()
        expect(widget.get_by_test_id("question")).to_be_focused()
        wire.check()
        widget.context.close()
    finally:
        stderr = _stop(mock)
    assert "Traceback" not in stderr


def test_with_an_api_key_the_dashboard_asks_for_it_and_then_watches(browser: Browser, artifacts: Path) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    mock = _start("--api-key", f"{KEY}=Alice", "--routing", "manual")
    try:
        customer = _customer_auth(mock, KEY)
        with connect(f"{customer['websocket_url']}?token={customer['jwt']}", proxy=None, open_timeout=10) as ws:
            ws.send(_start_frame("Hi"))
            dashboard = _page(browser)
            dashboard.goto(mock.web_url)
            expect(dashboard.get_by_test_id("key-form")).to_be_visible()
            expect(dashboard.get_by_test_id("conversation-row")).to_have_count(0)
            dashboard.get_by_test_id("dashboard-key").fill("k-wrong")
            dashboard.get_by_test_id("dashboard-login").click()
            expect(dashboard.get_by_test_id("error")).to_contain_text("Key refused")
            dashboard.get_by_test_id("dashboard-key").fill(KEY)
            dashboard.get_by_test_id("dashboard-key").press("Enter")
            expect(dashboard.get_by_test_id("key-form")).to_be_hidden()
            row = dashboard.get_by_test_id("conversation-row")
            expect(row).to_have_attribute("data-state", "queued")
            row.focus()
            dashboard.keyboard.press("Enter")  # watch, by keyboard, with an agent JWT got for the key
            expect(dashboard.get_by_test_id("frame")).to_have_count(1)
            uuid = row.get_attribute("data-conversation")
            ws.send(orjson.dumps({"type": "check queue position", "conversation_uuid": uuid}).decode())
            expect(dashboard.locator("[data-testid=frame][data-dir=out]")).to_contain_text("queue position 1")
            _screenshot(dashboard, artifacts, "dashboard-keyed")
            dashboard.context.close()
    finally:
        stderr = _stop(mock)
    assert "Traceback" not in stderr
