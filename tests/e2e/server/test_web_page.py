"""The chat page (GET /) in headless Chromium (Debian's `chromium`, driven by playwright):
a real two-turn conversation with SmolLM2, checked against the API and by screenshot."""
import collections
import json
import os
import pathlib
import shutil
import struct
import zlib

import pytest

from conftest import API_KEY

VIEWPORT = {"width": 800, "height": 600}
MAX_TOKENS = 32
USER_BG = (0xE8, 0xF0, 0xFE)       # .user in src/server/web_page.cpp
ASSISTANT_BG = (0xF1, 0xF3, 0xF4)  # .assistant
# Waits until the page has sent `n` messages and the last reply has finished streaming.
TURN_DONE = "n => document.querySelectorAll('#log .user').length === n && document.body.dataset.state === 'idle'"


def chromium_path():
    path = os.environ.get("EMBER_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.skip("chromium is not installed (scripts/install-deps.sh installs Debian's package)")
    return path


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("chromium is installed but the playwright package is not (run scripts/install-deps.sh)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=["--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on `/` that records console errors and uncaught exceptions in .errors and
    the bodies of its chat requests in .sent."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    pg = context.new_page()
    pg.errors, pg.sent = [], []
    pg.on("request", lambda r: pg.sent.append(json.loads(r.post_data)) if r.url.endswith("/v1/chat/completions") else None)
    pg.on("console", lambda m: pg.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(f"uncaught: {e}"))
    pg.goto(server.base + "/")
    yield pg
    context.close()


def unfilter_row(kind, line, prev, bpp):
    """Undoes PNG filter 1 (sub), 3 (average) or 4 (Paeth) in place."""
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        if kind == 1:
            line[i] = (line[i] + a) & 255
        elif kind == 3:
            line[i] = (line[i] + (a + b) // 2) & 255
        else:
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255


def decode_png(data):
    """Decodes an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes), checking every
    chunk's CRC. Returns (width, height, rows): rows[y] is a list of (r, g, b) tuples."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind} chunk"
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    width, height, depth, color_type, _, _, interlace = ihdr
    assert depth == 8 and color_type in (2, 6) and interlace == 0, f"unexpected PNG format {ihdr}"
    bpp = 3 if color_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    assert len(raw) == height * (stride + 1), "IDAT size does not match the header"
    prev, rows = bytearray(stride), []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 2:  # up: most of Chromium's rows
            line = bytearray((x + p) & 255 for x, p in zip(line, prev))
        elif kind in (1, 3, 4):
            unfilter_row(kind, line, prev, bpp)
        else:
            assert kind == 0, f"bad PNG filter {kind}"
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, bpp)])
        prev = line
    return width, height, rows


def screenshot(pg, name):
    png = pg.screenshot()
    if os.environ.get("EMBER_SCREENSHOT_DIR"):  # keep them to look at
        pathlib.Path(os.environ["EMBER_SCREENSHOT_DIR"], f"web_page_{name}.png").write_bytes(png)
    width, height, rows = decode_png(png)
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"])
    return rows


def pixels(rows, box, inset=3):
    """The pixels inside an element's bounding box (less a few pixels for rounded corners)."""
    x0, y0 = int(box["x"]) + inset, int(box["y"]) + inset
    x1 = min(int(box["x"] + box["width"]) - inset, VIEWPORT["width"])
    y1 = min(int(box["y"] + box["height"]) - inset, VIEWPORT["height"])
    assert x1 - x0 > 20 and y1 - y0 > 5, f"element box {box} is not on screen"
    return [px for row in rows[y0:y1] for px in row[x0:x1]]


def check_bubble(rows, element, background):
    """The bubble shows on screen: its own background colour, with dark text drawn on it."""
    region = pixels(rows, element.bounding_box())
    (most_common, _), = collections.Counter(region).most_common(1)
    assert most_common == background
    ink = sum(1 for r, g, b in region if max(r, g, b) < 110)
    assert ink >= 30, f"only {ink} dark pixels: no text drawn in the bubble"


def api_reply(server, messages):
    status, body, _ = server.post("/v1/chat/completions", {"model": "smollm2", "messages": messages,
                                                           "temperature": 0, "max_tokens": MAX_TOKENS})
    assert status == 200, body
    return json.loads(body)["choices"][0]["message"]["content"]


def send_turn(pg, text, n, use_enter):
    pg.fill("#msg", text)
    if use_enter:
        pg.press("#msg", "Enter")
    else:
        pg.click("#send")
    pg.wait_for_function(TURN_DONE, arg=n, timeout=60_000)
    assert pg.locator("#log .error").count() == 0, pg.locator("#log .error").all_inner_texts()
    replies = pg.locator("#log .assistant:not(.reasoning)")
    assert replies.count() == n
    return replies.nth(n - 1)


def test_conversation_in_chromium(page, server):
    assert page.title() == "ember"
    page.fill("#key", API_KEY)
    page.fill("#temp", "0")
    page.fill("#max", str(MAX_TOKENS))
    before = screenshot(page, "before")

    # Turn 1 (send button): the streamed reply equals the API's answer to the same request.
    turn1 = "What is the capital of France?"
    reply1 = send_turn(page, turn1, 1, use_enter=False)
    text1 = reply1.text_content()
    assert text1.strip() and "<|im" not in text1
    assert text1 == api_reply(server, [{"role": "user", "content": turn1}])

    after = screenshot(page, "turn1")
    user1 = page.locator("#log .user").nth(0)
    check_bubble(after, user1, USER_BG)
    check_bubble(after, reply1, ASSISTANT_BG)
    log_box = page.locator("#log").bounding_box()
    assert pixels(before, log_box) != pixels(after, log_box)
    assert USER_BG not in set(pixels(before, log_box)), "a message bubble showed before any was sent"

    # Shift+Enter adds a line and sends nothing.
    page.fill("#msg", "draft")
    page.press("#msg", "Shift+Enter")
    assert page.input_value("#msg") == "draft\n"
    assert page.evaluate("messages.length") == 2

    # Turn 2 (Enter key): the page sends the whole conversation, so its reply equals the
    # API's answer given both turns (which differs from the answer to turn 2 alone).
    turn2 = "And of Germany?"
    reply2 = send_turn(page, turn2, 2, use_enter=True)
    text2 = reply2.text_content()
    assert text2.strip() and "<|im" not in text2
    history = [{"role": "user", "content": turn1}, {"role": "assistant", "content": text1},
               {"role": "user", "content": turn2}]
    assert text2 == api_reply(server, history)
    assert text2 != api_reply(server, history[2:])
    assert [body["messages"] for body in page.sent] == [history[:1], history]
    assert all(body["temperature"] == 0 and body["max_tokens"] == MAX_TOKENS and body["stream"] for body in page.sent)
    assert page.evaluate("messages") == history + [{"role": "assistant", "content": text2}]
    final = screenshot(page, "turn2")
    check_bubble(final, page.locator("#log .user").nth(1), USER_BG)
    check_bubble(final, reply2, ASSISTANT_BG)

    # Reset clears the conversation.
    page.click("#reset")
    assert page.evaluate("messages.length") == 0
    assert page.locator("#log > div").count() == 0
    assert page.errors == []


def test_wrong_api_key_shows_the_error(page, server):
    page.fill("#key", "sk-wrong")
    page.fill("#msg", "Hello")
    page.click("#send")
    page.wait_for_function("document.querySelector('#log .error') && document.body.dataset.state === 'idle'",
                           timeout=30_000)
    assert "invalid_api_key" in page.locator("#log .error").inner_text()
    assert page.evaluate("messages.length") == 0  # the failed turn is not kept
    assert page.locator("#send").is_enabled()
    # Only the browser's note about the 401 response, no script error.
    assert all("401" in e for e in page.errors), page.errors


def metric(server, name):
    status, text, _ = server.get("/metrics")
    assert status == 200
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def test_reset_aborts_a_streaming_reply(page, server):
    generated = metric(server, "ember_generation_tokens_total")
    page.fill("#key", API_KEY)
    page.fill("#temp", "0")
    page.fill("#max", "1000")
    page.fill("#msg", "Write the numbers from 1 to 1000 separated by commas.")  # runs to 1000 tokens
    page.click("#send")
    page.wait_for_function("document.querySelector('#log .assistant:not(.reasoning)').textContent.length > 0",
                           timeout=30_000)
    assert page.evaluate("document.body.dataset.state") == "busy"
    page.click("#reset")
    assert page.evaluate("document.body.dataset.state") == "idle"
    page.wait_for_timeout(300)  # a late chunk of the aborted stream must not come back
    assert page.evaluate("messages.length") == 0
    assert page.locator("#log > div").count() == 0
    # The abort reached the server: the request stopped long before its 1000 tokens.
    for _ in range(100):
        if metric(server, "ember_requests_running") == 0:
            break
        page.wait_for_timeout(100)
    assert metric(server, "ember_requests_running") == 0
    assert metric(server, "ember_generation_tokens_total") - generated < 1000
    page.fill("#max", str(MAX_TOKENS))
    send_turn(page, "Hello!", 1, use_enter=True)
    assert page.evaluate("messages.length") == 2
    assert page.errors == []
