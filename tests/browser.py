"""A real browser for the pages we generate: headless Chromium (Debian's ``chromium``), driven over
the DevTools protocol on loopback with the ``websockets`` client we already depend on.

``Browser().evaluate(path, expression)`` loads a local file, waits for it to load, and returns the
value of a JavaScript expression evaluated in the rendered page (text, element sizes...).
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from websockets.sync.client import connect


class Browser:
    def __init__(self) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        assert binary, "the page tests need a real browser: apt-get install chromium (.ci/run installs it)"
        # chromium's helper processes may still write the profile as the browser exits: its cleanup
        # must not fail a page test (a run here failed on "Directory not empty: 'Default'")
        self._profile = tempfile.TemporaryDirectory(prefix="hlarchive-chromium-", ignore_cleanup_errors=True)
        self._process = subprocess.Popen(
            [
                binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}",
                "--window-size=1280,900", "about:blank",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.url = self._devtools_url()
        self._ids = itertools.count(1)

    def _devtools_url(self, timeout_s: float = 60.0) -> str:
        assert self._process.stderr is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self._process.stderr.readline()
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                return found.group(1)
            if not line and self._process.poll() is not None:
                break
        raise AssertionError("chromium did not start its DevTools endpoint")

    def evaluate(self, page: Path, expression: str, timeout_s: float = 30.0) -> Any:
        """Open ``page`` in a new tab, wait for its load event, and return ``expression``'s value."""
        with connect(self.url, max_size=None, open_timeout=timeout_s) as socket:
            target = self._call(socket, "Target.createTarget", {"url": "about:blank"})["targetId"]
            session = self._call(socket, "Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            self._call(socket, "Page.enable", {}, session)
            self._call(socket, "Page.navigate", {"url": page.resolve().as_uri()}, session)
            deadline = time.monotonic() + timeout_s
            while True:
                message = orjson.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
                if message.get("method") == "Page.loadEventFired" and message.get("sessionId") == session:
                    break
            result = self._call(socket, "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
            self._call(socket, "Target.closeTarget", {"targetId": target})
        if "exceptionDetails" in result:
            raise AssertionError(f"the page's script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _call(self, socket: Any, method: str, params: dict[str, Any], session: str | None = None) -> dict[str, Any]:
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        socket.send(orjson.dumps(message).decode())
        while True:
            reply = orjson.loads(socket.recv(timeout=30))
            if reply.get("id") == number:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._profile.cleanup()
        shutil.rmtree(self._profile.name, ignore_errors=True)  # what the helpers wrote after the first try


# what every page test reads of a rendered page: its text, and the size of an element
PAGE_FACTS = """(() => {
  const box = (selector) => { const e = document.querySelector(selector); if (!e) return null;
    const r = e.getBoundingClientRect(); return {width: r.width, height: r.height}; };
  return {text: document.body.innerText, heatmap: box('#heatmap'), chart: box('#chart'),
          requests: performance.getEntriesByType('resource').map(e => e.name)};
})()"""
