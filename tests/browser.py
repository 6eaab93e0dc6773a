"""A headless Debian chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
commands on fd 3, replies on fd 4, NUL-separated JSON), so no driver or websocket package is
needed. It records console errors, uncaught exceptions and failed loads (Log domain), the URLs
the page requests once watch_network() is called, and takes full-page screenshots."""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
BINARIES = ("chromium", "chromium-browser", "google-chrome")  # the same as .ci/run looks for


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, BINARIES) if path), None)


class Browser:
    def __init__(self, binary: str, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:  # runs in the child: the protocol's fixed descriptors
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=wire_fds, pass_fds=(3, 4), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._messages: queue.Queue = queue.Queue()
        self._next_id = 0
        self.errors: list[str] = []
        self.requests: list[str] = []  # every URL requested after watch_network()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session=self.session)

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_browser, 65536):
            buffer += chunk
            *complete, buffer = buffer.split(b"\0")
            for raw in complete:
                self._messages.put(json.loads(raw))
        self._messages.put(None)

    def _note(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append("console: " + " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry['text']} {entry.get('url', '')}".strip())

    def _wait(self, accept, what: str) -> dict:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                message = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"chromium: no {what} within {self.timeout_s} s") from None
            if message is None:
                raise RuntimeError(f"chromium exited (status {self.process.poll()}) while waiting for {what}")
            self._note(message)
            if accept(message):
                return message

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        reply = self._wait(lambda m: m.get("id") == command["id"], f"reply to {method}")
        if "error" in reply:
            raise RuntimeError(f"chromium: {method}: {reply['error']}")
        return reply.get("result", {})

    def open(self, url: str) -> None:
        """Navigate and wait for the load event (none comes for a same-page #fragment change)."""
        if not self.call("Page.navigate", session=self.session, url=url).get("loaderId"):
            return
        self._wait(lambda m: m.get("method") == "Page.loadEventFired", f"load of {url}")

    def watch_network(self) -> None:
        """From now on, record every request the page makes (data: URLs included) in `requests`."""
        self.call("Network.enable", session=self.session)

    def screenshot(self, path: str, width_px: int = 1400) -> None:
        """A PNG of the whole page, the viewport stretched to its height."""
        height_px = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call("Emulation.setDeviceMetricsOverride", session=self.session, width=width_px, height=height_px,
                  deviceScaleFactor=1, mobile=False)
        found = self.call("Page.captureScreenshot", session=self.session, format="png", captureBeyondViewport=True)
        with open(path, "wb") as stream:
            stream.write(base64.b64decode(found["data"]))

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", session=self.session, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluating {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def poll(self, expression: str, timeout_s: float = 20.0):
        """Evaluate until the value is truthy (the pages load their data asynchronously)."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.2)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        self._reader.join(timeout=10)  # ends at end of file, once chromium has exited
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)
