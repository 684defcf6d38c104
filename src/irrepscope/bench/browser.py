"""A headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
opening a report, waiting for Bokeh to draw it, reading what the page says, console errors,
mouse moves and screenshots. Standard library only; Debian's ``chromium`` package is enough
(``apt-get install chromium``). Used by ``irrepscope bench explorer`` and the browser tests.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe")
INSTALL_HINT = "install Chromium (Debian: apt-get install -y chromium) or set $CHROMIUM"
# Resolves with the milliseconds since navigation when every Bokeh view has drawn (or rejects).
BOKEH_DRAWN_JS = """
new Promise((resolve, reject) => {
  const start = Date.now();
  const views = () => (window.Bokeh && Bokeh.index) ? Object.values(Bokeh.index) : [];
  const check = () => {
    const all = views();
    if (all.length && all.every((v) => !v.has_finished || v.has_finished())) {
      resolve(performance.now());
    } else if (Date.now() - start > %d) {
      reject(new Error("Bokeh did not finish drawing: " + all.length + " root views"));
    } else { setTimeout(check, 10); }
  };
  check();
})
"""

# [panel title, points drawn, data source id] of every scatter panel of the Bokeh documents
SCATTER_PANELS_JS = """(() => {
  const out = [];
  for (const pv of Object.values(Bokeh.index)) {
    if (!pv.renderer_views || !pv.model.title) continue;
    for (const rv of pv.renderer_views.values()) {
      if (rv.glyph && rv.model.data_source && rv.glyph.data_size > 1)
        out.push([pv.model.title.text, rv.glyph.data_size, rv.model.data_source.id]);
    }
  }
  return out;
})()"""


class BrowserError(RuntimeError):
    """Chromium could not be started, or the page failed."""


def find_chromium() -> str | None:
    """Path of a Chromium executable ($CHROMIUM first), or None."""
    chosen = os.environ.get("CHROMIUM")
    if chosen:
        return chosen if Path(chosen).exists() or shutil.which(chosen) else None
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, width: int = 1280, height: int = 900, timeout: float = 60.0) -> None:
        executable = find_chromium()
        if executable is None:
            raise BrowserError(f"no Chromium found; {INSTALL_HINT}")
        self.timeout, self.errors, self._next_id = timeout, [], 0
        self._profile = tempfile.mkdtemp(prefix="irrepscope-chromium-")
        to_browser, self._write_fd = os.pipe()
        self._read_fd, from_browser = os.pipe()

        def pipes() -> None:  # chromium reads commands on fd 3, writes replies on fd 4
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
            os.dup2(high[0], 3)  # dup2 makes them inheritable; Python's own fds are not (PEP
            os.dup2(high[1], 4)  # 446), so close_fds=False hands chromium these two only

        self.process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile}",
             f"--window-size={width},{height}", "about:blank"],
            close_fds=False, preexec_fn=pipes,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)
        self.session = self.send("Target.attachToTarget", {"targetId": target["targetId"],
                                                           "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.resize(width, height)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop Chromium and remove its profile."""
        try:
            self.send("Browser.close", session=False)
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._write_fd, self._read_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def _message(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise BrowserError("Chromium stopped answering (crashed or timed out)")
            chunk = os.read(self._read_fd, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _event(self, message: dict[str, Any]) -> None:
        """Keep console errors, uncaught exceptions and error log entries."""
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"uncaught: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.errors.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(f"log: {params['entry'].get('text')} ({params['entry'].get('url')})")

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: bool = True) -> dict[str, Any]:
        """Send one command and return its result (events met meanwhile are recorded)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._write_fd, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self._event(reply)

    def resize(self, width: int, height: int) -> None:
        """Set the viewport (CSS pixels)."""
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                                                         "deviceScaleFactor": 1,
                                                         "mobile": width < 600})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited); page errors raise."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}")
        return result.get("result", {}).get("value")

    def open(self, path: str | Path, wait_ms: int = 60000) -> float:
        """Load a file and wait until every Bokeh view has drawn (pages without Bokeh: until
        loaded); returns the milliseconds from navigation start to that moment."""
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()})
        while True:
            message = self._message()
            if message.get("method") == "Page.loadEventFired":
                break
            self._event(message)
        if not self.evaluate("!!(window.Bokeh && Bokeh.index)"):
            return float(self.evaluate("performance.now()"))
        return float(self.evaluate(BOKEH_DRAWN_JS % wait_ms))

    def scatter_panels(self) -> list[list[Any]]:
        """[title, points drawn, data source id] of every Bokeh scatter panel on the page."""
        return self.evaluate(SCATTER_PANELS_JS)

    def move_mouse(self, x: float, y: float) -> None:
        """Move the mouse to viewport coordinates (CSS pixels)."""
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def drag(self, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
        """Press the left button at ``start``, move to ``end`` and release (viewport pixels)."""
        self.move_mouse(*start)
        press = {"button": "left", "clickCount": 1}
        self.send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": start[0],
                                               "y": start[1], **press})
        for k in range(1, steps + 1):
            x = start[0] + (end[0] - start[0]) * k / steps
            y = start[1] + (end[1] - start[1]) * k / steps
            self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y,
                                                   "buttons": 1, "button": "left"})
        self.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": end[0],
                                               "y": end[1], **press})

    def screenshot(self, out: str | Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole page, or the viewport)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate("[document.documentElement.scrollWidth, "
                                 "document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size[0], "height": size[1],
                                "scale": 1})
        data = self.send("Page.captureScreenshot", params)["data"]
        out = Path(out)
        out.write_bytes(base64.b64decode(data))
        return out
