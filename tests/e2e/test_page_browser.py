"""The chat page in a real headless Chromium, against a running astrlite on a real socket.

One browser and one server for the module; the tests run in file order and build on each
other (the key entered first is used later, the session made first is found after a
reload). A screenshot of each step is kept under the module's tmp dir (`screens/`).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from astrlite import __version__
from astrlite.testing import AstrliteServer, serve
from tests.support.browser import chromium


def png(size: int, rgb: tuple[int, int, int]) -> bytes:
    """A square PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    rows = b"".join(b"\0" + bytes(rgb) * size for _ in range(size))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = png(48, (200, 30, 30))
SUN = png(64, (250, 190, 20))
SLOW_WORDS = "one two three four five"
RULES = [
    {"match": "slow", "reply": SLOW_WORDS, "delay_ms": 120},
    {"match": "very slow", "reply": "a b c d e f g h i j", "delay_ms": 300},
    {
        "match": "picture",
        "reply": "Here is the sun.",
        "attachment": {"path": "sun.png", "kind": "image", "filename": "sun.png"},
    },
    {
        "match": "weather",
        "reply": "Sunny.",
        "reasoning": "The user wants the weather.",
        "tool_call": {"name": "get_weather", "args": {"city": "Paris"}, "result": "sunny"},
    },
]
WAIT = 10.0
UPLOAD_LIMIT = 64 * 1024
SESSIONS_PAGE = 20  # the page asks for 20 sessions at a time


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AstrliteServer]:
    data_dir = tmp_path_factory.mktemp("data")
    (data_dir / "sun.png").write_bytes(SUN)
    config = {"display_reasoning": True}
    configs = {"terse": {"name": "terse"}}
    options = {"max_upload_bytes": UPLOAD_LIMIT}
    with serve(
        data_dir=data_dir, rules=RULES, config=config, configs=configs, options=options
    ) as running:
        yield running


@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screens")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, server: AstrliteServer) -> Iterator[Any]:
    driver = chromium(tmp_path_factory.mktemp("profile"))
    try:
        driver.get(server.base_url + "/")
        yield driver
    finally:
        driver.quit()


class Page:
    def __init__(self, driver: Any, server: AstrliteServer, screens: Path) -> None:
        self.driver = driver
        self.server = server
        self.screens = screens
        self.entries: list[dict[str, Any]] = []
        self.expected: list[str] = []  # console errors the test provokes on purpose

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        found: list[Any] = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def until(self, condition: Callable[[], Any], what: str) -> Any:
        from selenium.webdriver.support.wait import WebDriverWait

        wait = WebDriverWait(self.driver, WAIT, poll_frequency=0.02)
        return wait.until(lambda _: condition(), message=f"waited {WAIT} s for {what}")

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(self.screens / f"{name}.png"))

    def type_into(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def send(self, text: str) -> None:
        """Type a message and press Enter, as a keyboard user does."""
        from selenium.webdriver.common.keys import Keys

        self.until(lambda: self.find("#send").is_enabled(), "the page to be ready to send")
        self.find("#message").send_keys(text, Keys.ENTER)

    def idle(self) -> None:
        self.until(lambda: self.find("#send").is_enabled(), "the reply to end")

    def bot_texts(self) -> list[str]:
        texts: list[str] = self.js(
            "return [...document.querySelectorAll('.msg.bot')].map(m => m.textContent)"
        )
        return texts

    def alert(self) -> str:
        text: str = self.js(
            "const a = document.getElementById('alert'); return a.hidden ? '' : a.textContent"
        )
        return text

    def log(self) -> list[dict[str, Any]]:
        """Every console entry since the test began (the driver hands each out once)."""
        self.entries += self.driver.get_log("browser")
        return self.entries


def has_route(server: AstrliteServer, path: str) -> bool:
    document = httpx.get(server.base_url + "/api/v1/openapi.json", timeout=5).json()
    return path in document["paths"]


def health_missing(server: AstrliteServer) -> bool:
    return httpx.get(server.base_url + "/health", timeout=5).status_code == 404


@pytest.fixture
def page(browser: Any, server: AstrliteServer, screens: Path) -> Iterator[Page]:
    """The page; after the test, the browser's console must hold no error the test did
    not expect (a test adds the ones it provokes to `page.expected`)."""
    current = Page(browser, server, screens)
    yield current
    errors = [entry for entry in current.log() if entry["level"] == "SEVERE"]
    if health_missing(server):  # the footer asks /health first (added by the operators issue)
        errors = [e for e in errors if "/health " not in e["message"]]
    unexpected = [e for e in errors if not any(word in e["message"] for word in current.expected)]
    assert unexpected == []


# -- the steps ------------------------------------------------------------------------


def test_the_page_asks_for_a_key_and_shows_the_version(page: Page) -> None:
    assert page.driver.title == "astrlite chat"
    assert page.js("return document.activeElement.id") == "key"
    if health_missing(page.server):  # until the operators issue adds /health
        expected = f"Server: reachable · astrlite {__version__}"
        page.until(lambda: page.find("#footer").text == expected, "the footer's version")
    else:
        expected = f"Server: healthy · astrlite {__version__} · up "
        page.until(lambda: page.find("#footer").text.startswith(expected), "the footer's health")
    page.shot("01-asks-for-a-key")


def test_a_wrong_key_shows_invalid_api_key(page: Page) -> None:
    from selenium.webdriver.common.keys import Keys

    page.expected = ["401"]
    page.find("#key").send_keys("abk_" + "x" * 43, Keys.ENTER)
    page.until(lambda: page.alert() == "Invalid API key", "the alert")
    assert page.js("return sessionStorage.getItem('astrlite.key')") is None
    page.shot("02-wrong-key")


def test_a_key_is_kept_in_session_storage_only(page: Page) -> None:
    from selenium.webdriver.common.keys import Keys

    page.find("#key").send_keys(page.server.api_key, Keys.ENTER)
    page.until(lambda: page.alert() == "", "the alert to clear")
    page.until(lambda: len(page.all("#config option")) == 2, "the configs")
    assert page.js("return sessionStorage.getItem('astrlite.key')") == page.server.api_key
    assert page.js("return localStorage.length") == 0
    assert page.js("return document.cookie") == ""
    options = [o.text for o in page.all("#config option")]
    assert options == ["terse", "default (default)"]
    page.type_into("#username", "alice")
    page.shot("03-key-entered")


def test_shift_enter_starts_a_new_line_and_sends_nothing(page: Page) -> None:
    from selenium.webdriver.common.keys import Keys

    field = page.find("#message")
    field.send_keys("line one", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "line two")
    assert field.get_attribute("value") == "line one\nline two"
    assert page.all(".msg") == []
    field.clear()


def test_a_streamed_reply_appears_in_pieces(page: Page) -> None:
    # Every change of the bot's text is recorded as it happens in the page.
    page.js(
        """
        window.__seen = [];
        new MutationObserver(() => {
          const texts = document.querySelectorAll('.msg.bot .text');
          if (texts.length) window.__seen.push(texts[texts.length - 1].textContent);
        }).observe(document.getElementById('log'),
                   {subtree: true, childList: true, characterData: true});
        """
    )
    page.send("slow")
    page.until(lambda: page.js("return window.__seen.length") >= 2, "the first pieces")
    page.shot("04-streaming")
    page.idle()
    assert page.bot_texts()[-1].startswith("Bot" + SLOW_WORDS)
    seen = [text for text in dict.fromkeys(page.js("return window.__seen")) if text]
    assert seen[-1] == SLOW_WORDS
    assert len(seen) >= 3, seen  # at least two partial replies were shown before the whole
    assert all(SLOW_WORDS.startswith(text) for text in seen), seen
    assert page.find(".msg.user").text.endswith("slow")
    page.until(lambda: len(page.all("#sessions button")) == 1, "the new session in the list")
    page.shot("05-streamed")


def test_after_a_reload_the_session_is_in_the_list(page: Page) -> None:
    session_id = page.js("return document.querySelector('#sessions button').dataset.sessionId")
    page.driver.refresh()
    page.until(lambda: len(page.all("#sessions button")) == 1, "the session list")
    button = page.find("#sessions button")
    assert button.get_attribute("data-session-id") == session_id
    assert button.text.startswith("slow")  # the first message names the session (F20)
    assert page.find("#username").get_attribute("value") == "alice"
    button.click()
    page.until(lambda: session_id in page.find("#session-note").text, "the session to open")
    page.shot("06-reloaded")


def test_reasoning_and_tool_calls_are_folded(page: Page) -> None:
    page.find("#new-chat").click()
    page.send("weather")
    page.idle()
    bot = page.all(".msg.bot")[-1]
    summaries = [s.text for s in bot.find_elements("css selector", "details > summary")]
    assert summaries == ["Reasoning", "Tool call: get_weather"]
    assert (
        page.js("return [...document.querySelectorAll('.msg.bot details')].some(d => d.open)")
        is False
    )
    assert "Sunny." in bot.text
    bot.find_elements("css selector", "details > summary")[1].click()
    tool = bot.find_elements("css selector", "details pre")[1].text
    assert 'arguments: {"city":"Paris"}' in tool and "result: sunny" in tool
    page.shot("07-folded")


def test_an_attached_png_is_shown_in_the_conversation(page: Page, tmp_path: Path) -> None:
    picture = tmp_path / "red.png"
    picture.write_bytes(PNG)
    page.find("#file").send_keys(str(picture))
    page.send("look")
    page.idle()
    image = page.until(lambda: page.all(".msg.user img"), "the attached image")[-1]
    page.until(lambda: image.get_attribute("naturalWidth") == "48", "the image to load")
    assert image.get_attribute("src").startswith("blob:")
    assert image.get_attribute("alt") == "red.png"
    assert "[image: red.png]" in page.bot_texts()[-1]  # the bot saw the attachment
    page.shot("08-attached")


def test_a_bot_image_from_the_scripted_provider_is_shown(page: Page) -> None:
    page.send("picture")
    page.idle()
    bot = page.all(".msg.bot")[-1]
    assert "Here is the sun." in bot.text
    if not has_route(page.server, "/api/v1/files/content"):
        # The seed's stream names bot media ("[IMAGE]<name>") but gives no attachment id:
        # the page says so instead of showing a broken image.
        page.until(lambda: "offers no download for bot media" in bot.text, "the explanation")
        page.shot("09-bot-image")
        pytest.xfail("needs GET /api/v1/files/content (AstrBot 4.27 routes, issue 15)")
    assert_bot_image(page, bot)
    page.shot("09-bot-image")


def assert_bot_image(page: Page, bot: Any) -> None:
    image = page.until(lambda: bot.find_elements("css selector", "img"), "the bot's image")[0]
    page.until(lambda: image.get_attribute("naturalWidth") == "64", "the image to load")
    assert image.get_attribute("src").startswith("blob:")
    assert image.get_attribute("alt")


# The shape of a 4.27 stream with a bot image (P4 run_events), around a real attachment id.
STREAM_427 = [
    {"type": "session_id", "data": None, "session_id": "{session}"},
    {"type": "user_message_saved", "data": {"id": 1, "created_at": "t", "llm_checkpoint_id": "c"}},
    {"type": "run_started", "data": {"run_id": "m"}, "streaming": False, "message_id": "m"},
    {"type": "plain", "data": "pic:", "streaming": True, "chain_type": None, "message_id": "m"},
    {"type": "image", "data": "[IMAGE]20261206045509161_47b9.png", "streaming": True},
    {"type": "attachment_saved", "data": {"id": "{attachment}", "type": "image"}},
    {"type": "complete", "data": "pic:", "reasoning": "", "streaming": True},
    {"type": "end", "data": "", "streaming": False, "message_id": "m"},
]


def test_a_4_27_stream_shows_the_bot_image_by_its_attachment_id(page: Page) -> None:
    """The page's renderer on a 4.27-shaped chat stream (fetch of /api/v1/chat answered in
    the page): the image is downloaded from the real server by its attachment id."""
    uploaded = page.server.upload(SUN, "sun.png")
    session = page.js("return document.querySelector('#sessions button').dataset.sessionId")
    events = json.dumps(STREAM_427)
    events = events.replace("{attachment}", uploaded["attachment_id"]).replace("{session}", session)
    page.js(
        """
        const events = JSON.parse(arguments[0]);
        const real = window.fetch;
        window.fetch = (url, init) => {
          if (url !== '/api/v1/chat') return real(url, init);
          window.fetch = real;
          const bytes = new TextEncoder().encode(
            events.map(e => 'data: ' + JSON.stringify(e) + '\\n\\n').join(''));
          const body = new ReadableStream({start(c) { c.enqueue(bytes); c.close(); }});
          return Promise.resolve(new Response(body,
            {headers: {'content-type': 'text/event-stream; charset=utf-8'}}));
        };
        """,
        events,
    )
    page.send("picture please")
    page.idle()
    bot = page.all(".msg.bot")[-1]
    assert_bot_image(page, bot)
    assert bot.find_element("css selector", "img").get_attribute("alt") == (
        "20261206045509161_47b9.png"
    )
    page.shot("10-bot-image-by-id")


# A server with the 4.27 session routes (P3, R8): the page's fetch of the OpenAPI
# document gains the history route, and the history answer is the observed shape around
# real attachment ids. Injected before the page's own script runs.
HISTORY_FETCH = """
(() => {
  const history = JSON.parse(%s);
  const real = window.fetch.bind(window);
  const json = body => new Response(JSON.stringify(body),
    {headers: {'content-type': 'application/json'}});
  window.fetch = async (url, init) => {
    if (url === '/api/v1/openapi.json') {
      const document = await (await real(url, init)).json();
      document.paths['/api/v1/chat/sessions/{session_id}'] = {};
      return json(document);
    }
    if (typeof url === 'string' && url.startsWith('/api/v1/chat/sessions/')) {
      window.__historyAsked = [url, init.headers['X-API-Key']];
      return json({status: 'ok', message: null, data: history});
    }
    return real(url, init);
  };
})();
"""


def history(user_picture: str, bot_picture: str) -> dict[str, Any]:
    def row(row_id: int, sender: str, content: dict[str, Any]) -> dict[str, Any]:
        return {"id": row_id, "sender_id": sender, "sender_name": sender, "content": content}

    tool = {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}, "result": "sunny"}
    user = [
        {"type": "plain", "text": "hello <b>there</b>"},
        {"type": "image", "attachment_id": user_picture, "filename": "red.png"},
    ]
    bot = [
        {"type": "tool_call", "tool_calls": [tool]},
        {"type": "plain", "text": "Sunny in Paris."},
        {"type": "image", "attachment_id": bot_picture, "filename": "sun.png"},
    ]
    return {
        "history": [
            row(1, "alice", {"type": "user", "message": user}),
            row(2, "bot", {"type": "bot", "message": bot, "reasoning": "Weather, then."}),
        ],
        "threads": [],
        "is_running": False,
        "active_runs": [],
    }


def test_a_sessions_history_is_shown_when_the_server_offers_it(page: Page) -> None:
    answer = history(
        page.server.upload(PNG, "red.png")["attachment_id"],
        page.server.upload(SUN, "sun.png")["attachment_id"],
    )
    script = HISTORY_FETCH % json.dumps(json.dumps(answer))
    added = page.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})
    try:
        page.driver.refresh()
        page.until(lambda: page.all("#sessions button"), "the session list")
        button = page.all("#sessions button")[-1]
        session_id = button.get_attribute("data-session-id")
        button.click()
        page.until(lambda: len(page.all(".msg")) == 2, "the history")
        asked = page.js("return window.__historyAsked")
        assert asked == [f"/api/v1/chat/sessions/{session_id}?username=alice", page.server.api_key]
        user, bot = page.all(".msg")
        assert user.find_element("css selector", ".text").text == "hello <b>there</b>"
        summaries = [s.text for s in bot.find_elements("css selector", "details > summary")]
        assert summaries == ["Reasoning", "Tool call: get_weather"]
        assert "Sunny in Paris." in bot.text
        sizes = page.until(
            lambda: page.js(
                """const images = document.querySelectorAll('.msg img');
                   const sizes = [...images].map(i => i.naturalWidth);
                   return sizes.length === 2 && sizes.every(Boolean) && sizes;"""
            ),
            "both images to load",
        )
        assert sizes == [48, 64]
        page.shot("11-history")
    finally:
        page.driver.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]}
        )
        page.driver.refresh()
        page.until(lambda: page.all("#sessions button"), "the session list")


def test_stop_waiting_aborts_the_stream(page: Page) -> None:
    page.send("very slow")
    page.until(lambda: page.find("#stop").is_enabled(), "the stop button")
    page.until(lambda: page.bot_texts() and page.bot_texts()[-1] != "Bot", "the first piece")
    page.find("#stop").click()
    page.idle()
    page.until(lambda: "Stopped waiting" in page.bot_texts()[-1], "the note")
    assert "j" not in page.bot_texts()[-1].split()
    page.shot("12-stopped")


def test_an_envelope_error_is_shown_in_words_and_the_text_is_kept(
    page: Page, tmp_path: Path
) -> None:
    page.expected = ["413"]
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (UPLOAD_LIMIT + 1))
    page.find("#file").send_keys(str(big))
    page.send("too big")
    expected = f"File too large (limit {UPLOAD_LIMIT} bytes)"
    page.until(lambda: page.alert() == expected, "the error")
    assert expected in page.all(".msg.user")[-1].text
    assert page.find("#message").get_attribute("value") == "too big"  # nothing typed is lost
    page.shot("13-envelope-error")
    page.find("#message").clear()
    page.find("#file").clear()


def test_another_username_starts_afresh_with_its_own_sessions_paged(page: Page) -> None:
    headers = {"X-API-Key": page.server.api_key}
    for number in range(SESSIONS_PAGE + 1):
        body = {"username": "paged", "message": f"topic {number}"}
        httpx.post(page.server.base_url + "/api/v1/chat", json=body, headers=headers, timeout=10)
    page.type_into("#username", "paged\t")
    page.until(lambda: len(page.all("#sessions button")) == SESSIONS_PAGE, "the first page")
    assert page.all(".msg") == [] and "New chat" in page.find("#session-note").text
    names = [b.text.split("\n")[0] for b in page.all("#sessions button")]
    assert names[0] == f"topic {SESSIONS_PAGE}"  # the most recent first
    more = page.find("#more-sessions")
    assert more.is_displayed()
    more.click()
    page.until(lambda: len(page.all("#sessions button")) == SESSIONS_PAGE + 1, "the next page")
    assert page.all("#sessions button")[-1].text.startswith("topic 0")
    assert not more.is_displayed()
    page.shot("14-paged")
    query = {"username": "alice", "page_size": "100"}
    listed = httpx.get(
        page.server.base_url + "/api/v1/chat/sessions", params=query, headers=headers, timeout=5
    )
    alices = len(listed.json()["data"]["sessions"])
    page.type_into("#username", "alice\t")
    page.until(lambda: len(page.all("#sessions button")) == alices, "alice's sessions")


def test_every_control_has_a_label_and_the_page_fits_a_phone(page: Page) -> None:
    unlabelled = page.js(
        """return [...document.querySelectorAll('input, select, textarea')]
                  .filter(c => !c.labels.length).map(c => c.id)"""
    )
    assert unlabelled == []
    buttons = page.js("return [...document.querySelectorAll('button')].map(b => b.textContent)")
    assert all(text.strip() for text in buttons)
    page.driver.set_window_size(390, 844)
    try:
        overflow = page.js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        sizes = page.js(
            """const box = id => document.getElementById(id).getBoundingClientRect();
               return {message: box('message').width, log: box('log').height,
                       send: box('send').width}"""
        )
        assert sizes["message"] >= 300 and sizes["log"] >= 90 and sizes["send"] > 0, sizes
        page.find("#message").click()
        page.shot("15-phone")
    finally:
        page.driver.set_window_size(1100, 800)


def test_dark_mode_follows_the_system(page: Page) -> None:
    background = "return getComputedStyle(document.body).backgroundColor"
    light = page.js(background)
    page.driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    try:
        assert page.js(background) != light
        page.shot("16-dark")
    finally:
        page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_the_csp_stops_an_injected_inline_script(page: Page) -> None:
    # The CSP's own report, and the 404 of the image whose inline onerror must not run.
    page.expected = ["Content Security Policy", "/nothing-here.png"]
    ran = page.js(
        """
        window.__injected = false;
        const script = document.createElement('script');
        script.textContent = 'window.__injected = true';
        document.body.append(script);
        const handler = document.createElement('img');
        handler.setAttribute('onerror', 'window.__injected = true');
        handler.addEventListener('error', () => { window.__failed = true; });
        handler.src = '/nothing-here.png';
        document.body.append(handler);
        return window.__injected;
        """
    )
    assert ran is False
    page.until(lambda: page.js("return window.__failed === true"), "the image's error event")
    assert page.js("return window.__injected") is False  # neither ran
    page.until(
        lambda: any("Content Security Policy" in e["message"] for e in page.log()),
        "the CSP report in the console",
    )


# -- the SSE reader, in the page's own JavaScript -------------------------------------

READER_CHECK = """
const [text, chunking] = arguments;
const bytes = new TextEncoder().encode(text);
function run(cuts) {
  const got = [];
  const parser = new window.astrlite.SseParser(d => got.push(d));
  let start = 0;
  for (const cut of [...cuts, bytes.length]) { parser.push(bytes.slice(start, cut)); start = cut; }
  parser.end();
  return JSON.stringify(got);
}
const whole = run([]);
const failures = [];
if (chunking === 'every') {
  for (let i = 1; i < bytes.length; i++) {
    if (run([i]) !== whole) failures.push([i]);
  }
  const single = [...Array(bytes.length).keys()].slice(1);
  if (run(single) !== whole) failures.push('byte by byte');
}
return {whole: JSON.parse(whole), failures: failures};
"""

STREAM = (
    'data: {"type": "session_id", "data": null, "session_id": "s1"}\n\n'
    ": heartbeat\n\n"
    'data: {"type": "plain", "data": "héllo 世界 🌍", "streaming": true}\r\n\r\n'
    "data: first line\r\ndata:second line\r\rdata: cr only\r\r"
    "event: ignored\nid: 7\nretry: 10\ndata\n\n"
    'data: {"type": "end", "data": ""}\n\n'
    "data: an event without its blank line is dropped"
)
EXPECTED = [
    '{"type": "session_id", "data": null, "session_id": "s1"}',
    '{"type": "plain", "data": "héllo 世界 🌍", "streaming": true}',
    "first line\nsecond line",
    "cr only",
    "",
    '{"type": "end", "data": ""}',
]


def test_the_sse_reader_gives_the_same_events_wherever_the_bytes_are_cut(page: Page) -> None:
    result = page.js(READER_CHECK, STREAM, "every")
    assert result["whole"] == EXPECTED
    assert result["failures"] == []


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        ("data: a\n\ndata: b\n\n", ["a", "b"]),
        ("data:  two spaces\n\n", [" two spaces"]),  # only one space is removed
        ("data: x\n\n\n\n", ["x"]),  # blank lines alone dispatch nothing
        ("data: a\r\n\r\n", ["a"]),
        (": only a comment\n\n", []),
        ("data: ends with cr\r\r", ["ends with cr"]),
    ],
)
def test_the_sse_reader_follows_the_standard(page: Page, stream: str, expected: list[str]) -> None:
    assert page.js(READER_CHECK, stream, "none")["whole"] == expected


def test_the_reader_on_a_live_response_gives_every_event_of_the_raw_bytes(page: Page) -> None:
    """The page's reader, fed a real chat response as it arrives, yields exactly the data
    of each `data:` line of the same bytes."""
    result = page.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        (async () => {
          const response = await fetch('/api/v1/chat', {method: 'POST', headers: {
              'X-API-Key': sessionStorage.getItem('astrlite.key'),
              'Content-Type': 'application/json'},
            body: JSON.stringify({username: 'reader', message: 'slow'})});
          const reader = response.body.getReader();
          const got = [], raw = [];
          const parser = new window.astrlite.SseParser(d => got.push(d));
          for (;;) {
            const {done: end, value} = await reader.read();
            if (end) break;
            raw.push(...value);
            parser.push(value);
          }
          parser.end();
          done({got: got, raw: raw});
        })().catch(e => done({error: String(e)}));
        """
    )
    assert "error" not in result, result
    raw = bytes(result["raw"]).decode()
    expected = [line[len("data: ") :] for line in raw.split("\n") if line.startswith("data: ")]
    assert result["got"] == expected
    types = [json.loads(data)["type"] for data in expected]
    assert types == [
        "session_id",
        *["plain"] * 5,
        "agent_stats",
        "complete",
        "message_saved",
        "end",
    ]


# -- last, as it moves the browser to another server ----------------------------------


def streams_attachment_ids(server: AstrliteServer) -> bool:
    body = {"username": "probe", "message": "picture"}
    headers = {"X-API-Key": server.api_key}
    answer = httpx.post(server.base_url + "/api/v1/chat", json=body, headers=headers, timeout=10)
    return b'"attachment_saved"' in answer.content


def test_under_the_4_27_profile_a_bot_image_comes_by_its_attachment_id(
    page: Page, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """4.27 streams `attachment_saved` after a bot's media: the page downloads it from
    /api/v1/file?attachment_id= with the key, into a blob URL."""
    from selenium.webdriver.common.keys import Keys

    data_dir = tmp_path_factory.mktemp("data427")
    (data_dir / "sun.png").write_bytes(SUN)
    with serve(data_dir=data_dir, rules=RULES, options={"compat": "4.27"}) as other:
        page.driver.get(other.base_url + "/")
        page.find("#key").send_keys(other.api_key, Keys.ENTER)
        page.type_into("#username", "carol\t")
        page.send("picture")
        page.idle()
        bot = page.all(".msg.bot")[-1]
        assert "Here is the sun." in bot.text
        if not streams_attachment_ids(other):
            page.until(lambda: "offers no download for bot media" in bot.text, "the note")
            pytest.xfail("needs the 4.27 profile's attachment_saved event (issue 15)")
        assert_bot_image(page, bot)
        page.shot("17-bot-image-4.27")
