"""Headless Chromium for browser tests, driven over the Chrome DevTools Protocol on a pipe.

`--remote-debugging-pipe` makes Chromium read NUL-terminated JSON commands on its fd 3 and write
replies and events on fd 4, so a test needs no driver binary matching the browser (selenium's
chromedriver), no websocket client and no port. A shell maps the child's stdin/stdout to fds 3/4.

    with Chromium(profile_dir) as browser:
        page = browser.new_page(1280, 800)
        page.goto(url); page.wait_for("document.body.dataset.state === 'done'")
        page.set_files("#file", [path]); page.evaluate("..."); page.screenshot()
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# fd 3 and 4 are what --remote-debugging-pipe uses; the browser's own output goes to a log file
_LAUNCH = 'exec "$@" 3<&0 4>&1 </dev/null >>"$FER3D_CHROMIUM_LOG" 2>&1'


class DevToolsError(RuntimeError):
    pass


class Chromium:
    def __init__(self, profile_dir: Path, binary: Path = CHROMIUM, timeout: float = 30.0):
        self.timeout = timeout
        self.log = profile_dir / "chromium.log"
        profile_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(binary),
            "--headless",
            "--no-sandbox",  # tests run as root in containers
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile_dir / 'profile'}",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", _LAUNCH, "sh", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "FER3D_CHROMIUM_LOG": str(self.log)},
            start_new_session=True,  # its own process group: stopped as a whole
        )
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self.events: list[dict] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while chunk := self.process.stdout.read1(1 << 16):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """One command; its result, or DevToolsError with the browser's message."""
        with self._cond:
            self._next_id += 1
            call_id = self._next_id
        message = {"id": call_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.process.stdin.write(json.dumps(message).encode() + b"\0")
        self.process.stdin.flush()
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while call_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise DevToolsError(f"{method}: no reply from Chromium (log: {self.log_tail()})")
                self._cond.wait(min(left, 1.0))
            reply = self._replies.pop(call_id)
        if "error" in reply:
            raise DevToolsError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def new_page(self, width: int = 1280, height: int = 800) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Network"):
            page.send(f"{domain}.enable")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        return page

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # helpers (GPU, renderers) that outlived it
        self.process.wait(timeout=10)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Page:
    """One tab: the commands a test needs, each with the tab's session."""

    def __init__(self, browser: Chromium, session: str):
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str):
        """The expression's value (JSON-able; promises awaited); DevToolsError when it throws."""
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            raise DevToolsError(f"{expression!r} threw: {details.get('exception', {}).get('description', details)}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, what: str = ""):
        """Poll until the expression is truthy; its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"{what or expression} not true after {timeout:.0f} s")

    def goto(self, url: str, timeout: float = 30.0) -> None:
        self.send("Page.navigate", {"url": url})
        time.sleep(0.2)  # let the navigation start, so readyState is the new document's
        self.wait_for(
            f"document.readyState === 'complete' && location.href === {json.dumps(url)}", timeout, f"{url} loaded"
        )

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Put files into an <input type=file> as a user's pick would (the page gets its change event)."""
        root = self.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise DevToolsError(f"no element {selector!r} on the page")
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(p) for p in paths]})

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict = {"format": "png"}
        if full_page:
            width, height = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params.update(
                captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
            )
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", params)["data"]))
        return path

    def events(self, method: str) -> list[dict]:
        """This tab's events of one kind so far (e.g. Runtime.exceptionThrown, Network.requestWillBeSent)."""
        return [
            e["params"]
            for e in list(self.browser.events)
            if e["method"] == method and e.get("sessionId") == self.session
        ]
