"""Re-announcing, off the command path: discovery, availability and the
last states published again after a (re)connect, a Home Assistant restart
or a device's hello, on a thread of its own, requests coalesced.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable

log = logging.getLogger("hobguard.bridge")


class Announcer:
    """Runs `publish(full, devices)` on its own thread, one run at a time.
    Requests that come while a run waits or runs are coalesced into one more
    run, so a flood of requests costs one flag and a small set, not a queue:
    `full` (everything again) or the ids of devices whose discovery changed.
    A short debounce gathers a burst; two full runs are at least
    `min_interval_s` apart."""

    def __init__(
        self, publish: Callable[[bool, set[str]], None], debounce_s: float = 0.2, min_interval_s: float = 1.0
    ) -> None:
        self._publish = publish
        self.debounce_s = debounce_s
        self.min_interval_s = min_interval_s
        self._cond = threading.Condition()
        self._full = False
        self._devices: set[str] = set()
        self._reasons: set[str] = set()
        self._stopped = False
        self._last_full = -math.inf
        self.requests = 0
        self.runs = 0
        self.busy = False
        self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def request(self, reason: str, device: str | None = None) -> None:
        with self._cond:
            self.requests += 1
            if device is None:
                self._full = True
            else:
                self._devices.add(device)
            if len(self._reasons) < 8:
                self._reasons.add(reason)
            self._cond.notify_all()

    def _sleep(self, until: float) -> None:
        """Wait (holding the condition) until `until`, or until stopped:
        requests coming meanwhile do not cut the wait short."""
        while not self._stopped:
            left = until - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def idle(self) -> bool:
        with self._cond:
            return not (self._full or self._devices or self.busy)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and not (self._full or self._devices):
                    self._cond.wait()
                if self._stopped:
                    return
                self.busy = True
                self._sleep(time.monotonic() + self.debounce_s)  # gather the rest of a burst
                if self._full:
                    self._sleep(self._last_full + self.min_interval_s)
                if self._stopped:
                    return
                full, devices, reasons = self._full, self._devices, self._reasons
                self._full, self._devices, self._reasons = False, set(), set()
                if full:
                    self._last_full = time.monotonic()
            try:
                log.debug("announcing (%s)", ", ".join(sorted(reasons)))
                self._publish(full, devices)
            except Exception:
                log.exception("error while re-publishing discovery and states")
            finally:
                with self._cond:
                    self.runs += 1
                    self.busy = False
                    self._cond.notify_all()


def wait_acknowledged(info: Any, timeout_s: float = 5.0) -> None:
    try:
        info.wait_for_publish(timeout_s)
    except (RuntimeError, ValueError):
        pass
