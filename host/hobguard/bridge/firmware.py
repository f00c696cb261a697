"""Firmware updates from Home Assistant: the `update` entity (docs/updates.md).

Each device the bridge reaches over its network link gets an `update`
entity: installed version (the device's hello), latest version (the
firmware this hobguard ships), an install command and its progress. An
install runs here, in a thread of its own, through the bridge's own
authenticated connection to the device -- the same link that carries the
hob's commands, so nothing else needs a connection slot. It builds the
bundle as `hobguard update` does (tools/update.py), sends it in windowed
chunks, then follows the device through its restart until the new
firmware has confirmed itself or the board has rolled back.

What Home Assistant sees, on `<base>/<device>/firmware` (retained JSON):
`installed_version`, `latest_version`, `title`, `in_progress`,
`update_percentage` (0-100 while sending, null otherwise), and
`release_summary` saying how the last install went. Every install also
ends with one `update` event on the device's event topic (`result`:
`installed`, `rolled_back`, `refused`, `failed` or `unknown`); a refusal
(a burner lit, a timer running, ...) is also a `rejected` event with the
device's code and words, as for any refused command.

An install over a serial link is never started: the device takes updates
only over its authenticated network link (the entity is offered only for
devices the bridge reaches that way). `hobguard update` from another
machine uses a connection of its own beside the bridge's (the device
accepts three); the device runs one update at a time and refuses a second.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from hobguard_fw import protocol

from ..tools import update as tool

if TYPE_CHECKING:
    from .device_link import DeviceLink, Reply

log = logging.getLogger("hobguard.bridge.firmware")

TITLE = "hobguard firmware"
INSTALL_PAYLOAD = "install"
REQUEST_TIMEOUT_S = 10.0
END_TIMEOUT_S = 30.0  # the device reads the whole bundle back before it answers
PROGRESS_STEP = 5  # percent between two progress publishes


def link_takes_updates(link: Any) -> bool:
    """True for a link that reaches its device over the network link (the
    only way a device takes an update)."""
    return link is not None and str(getattr(link, "port", "")).startswith("tcp://")


def state_payload(
    installed: Any,
    latest: str | None,
    in_progress: bool = False,
    percentage: int | None = None,
    summary: str | None = None,
) -> dict[str, Any]:
    """The update entity's state (Home Assistant's MQTT update platform)."""
    state: dict[str, Any] = {
        "installed_version": installed if protocol.is_text(installed, 32) and installed else None,
        "latest_version": latest,
        "title": TITLE,
        "in_progress": in_progress,
        "update_percentage": percentage if in_progress else None,
    }
    if summary:
        state["release_summary"] = summary[:255]
    return state


@dataclass
class Outcome:
    result: str  # installed, rolled_back, refused, failed, unknown
    detail: str
    version: str | None = None
    code: str | None = None  # the device's error code, for a refusal


class Install(threading.Thread):
    """One install on one device. `publish(percentage, summary)` shows its
    progress; `done(outcome)` is called once, at the end, from this thread."""

    def __init__(
        self,
        link: "DeviceLink",
        device: str,
        package_dir: Path,
        publish: Callable[[int | None, str | None], None],
        done: Callable[[Outcome], None],
        *,
        come_back_s: float = tool.COME_BACK_S,
        confirm_s: float = tool.CONFIRM_S,
    ) -> None:
        super().__init__(name=f"install-{device}", daemon=True)
        self.link = link
        self.device = device
        self.package_dir = package_dir
        self.publish = publish
        self.on_done = done
        self.come_back_s = come_back_s
        self.confirm_s = confirm_s
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            outcome = self._install()
        except tool.UpdateError as err:
            outcome = Outcome("failed", str(err))
        except Exception as err:  # never kills the bridge
            log.exception("device %s: the install failed", self.device)
            outcome = Outcome("failed", f"the install failed in the bridge ({type(err).__name__}: {err})")
        try:
            self.on_done(outcome)
        except Exception:
            log.exception("device %s: reporting the install's end failed", self.device)

    # -- requests, blocking ------------------------------------------------------

    def _send(self, cmd: str, timeout_s: float, **args: Any) -> tuple[threading.Event, list["Reply"]]:
        event = threading.Event()
        box: list[Reply] = []

        def done(reply: "Reply") -> None:
            box.append(reply)
            event.set()

        self.link.request(cmd, done, timeout_s, for_device=self.device, **args)
        return event, box

    def _ask(self, cmd: str, timeout_s: float = REQUEST_TIMEOUT_S, **args: Any) -> "Reply":
        event, box = self._send(cmd, timeout_s, **args)
        event.wait(timeout_s + 5.0)
        if not box:
            raise tool.UpdateError(f"no answer to {cmd} from {self.device}")
        return box[0]

    # -- the story -------------------------------------------------------------------

    def _install(self) -> Outcome:
        status = self._ask("ota_status")
        if not status.ok or status.frame is None:
            return Outcome("failed", f"{self.device} takes no updates over the air ({status.code}: {status.message})")
        bundle = tool.build_bundle(self.package_dir, _mpy(status.frame.get("mpy")))
        begun = self._ask("ota_begin", version=bundle.version, size=bundle.size, sha256=bundle.sha256)
        if not begun.ok or begun.frame is None:
            return Outcome("refused", f"{begun.message} ({begun.code}): nothing changed", bundle.version, begun.code)
        step = begun.frame.get("chunk")
        step = step if isinstance(step, int) and 0 < step <= protocol.OTA_CHUNK else protocol.OTA_CHUNK
        self.publish(0, f"sending {bundle.version}")
        waiting: deque[tuple[threading.Event, list[Reply], int]] = deque()
        shown = 0
        for offset in range(0, bundle.size, step):
            piece = bundle.data[offset : offset + step]
            event, box = self._send("ota_chunk", REQUEST_TIMEOUT_S, off=offset, data=base64.b64encode(piece).decode())
            waiting.append((event, box, offset + len(piece)))
            last = offset + step >= bundle.size
            while waiting and (len(waiting) >= tool.WINDOW or last):
                event, box, sent = waiting.popleft()
                event.wait(REQUEST_TIMEOUT_S + 5.0)
                reply = box[0] if box else None
                if reply is None or not reply.ok:
                    why = f"{reply.message} ({reply.code})" if reply is not None else "no answer"
                    return Outcome("failed", f"the transfer stopped: {why}; nothing changed", bundle.version)
                percent = 100 * sent // bundle.size
                if percent >= shown + PROGRESS_STEP or sent == bundle.size:
                    shown = percent
                    self.publish(min(percent, 99), f"sending {bundle.version}")
        end = self._ask("ota_end", END_TIMEOUT_S)
        if not end.ok or end.frame is None:
            result = "refused" if end.code == protocol.E_STATE else "failed"
            return Outcome(result, f"not staged: {end.message} ({end.code}); nothing changed", bundle.version, end.code)
        slot = end.frame.get("slot")
        self.publish(100, f"{bundle.version} staged: the hob restarts into it as soon as nobody cooks")
        return self._follow(bundle, slot)

    def _follow(self, bundle: tool.Bundle, slot: Any) -> Outcome:
        """After the restart: the bridge's link reconnects by itself; ask
        until the new firmware has confirmed itself or the board rolled back."""
        deadline = time.monotonic() + self.come_back_s + self.confirm_s
        while not self.stopping.wait(tool.POLL_S):
            if time.monotonic() > deadline:
                return Outcome(
                    "unknown",
                    f"{self.device} did not confirm {bundle.version} in time: see hobguard update --status",
                    bundle.version,
                )
            if not self.link.ready:
                continue  # restarting, reconnecting, saying hello
            reply = self._ask("ota_status")
            if not reply.ok or reply.frame is None:
                continue
            frame = reply.frame
            last = tool.as_dict(frame.get("last"))
            if frame.get("slot") == slot and frame.get("build") == bundle.build and not frame.get("trial"):
                return Outcome("installed", f"{bundle.version} (build {bundle.build}) installed", bundle.version)
            if last.get("build") == bundle.build and last.get("result") == "rolled_back":
                why = tool.WHY_WORDS.get(str(last.get("why")), str(last.get("why")))
                return Outcome(
                    "rolled_back",
                    f"{bundle.version} did not come up healthy and the hob went back to {frame.get('fw')}: {why}",
                    bundle.version,
                )
        return Outcome("unknown", "the bridge stopped before the install ended", bundle.version)


def _mpy(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
