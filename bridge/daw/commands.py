"""Requests from the in-REAPER scripts, read over REAPER's web interface (docs/scripts.md).

The Lua scripts "Toggle A/B", "Revert AI pass" and "Accept all pending" append ``<seq> <command>`` to the
ExtState ``mixbridge/requests`` (entries separated by ``;``, the newest 16 kept). The bridge polls
``GET/EXTSTATE/mixbridge/requests`` on the web interface reapy already uses, handles each sequence number
once, and answers with ``SET/EXTSTATE/mixbridge/reply/<seq> <text>``, which the script shows.

Why ExtState over the web interface, not OSC: it is a request/response channel with state (OSC has no
replies and cannot carry text into a script), it needs nothing reapy's setup has not already enabled,
and a request survives the bridge being briefly busy.

Plain ``urllib`` (no reapy): polling must never hold reapy's connection or block a pass.
"""
from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from ..settings import Connection

DEFAULTS = Connection()

SECTION = "mixbridge"
REQUESTS_KEY = "requests"
REPLY_KEY = "reply"
#: Commands the scripts send.
COMMANDS = ("ab", "revert", "accept_all")
#: REAPER copies each web-interface command into ``char want[1024]`` before decoding it
#: (csurf_www.cpp): every command the bridge sends stays well under that, URL-quoted.
MAX_COMMAND_BYTES = 900


@dataclass(frozen=True, slots=True)
class Command:
    """One request from a script: its sequence number and command name (one of :data:`COMMANDS`)."""

    seq: int
    name: str


def parse_requests(text: str) -> list[Command]:
    """``"3 ab;4 revert"`` -> commands in queue order; malformed entries are skipped."""
    out = []
    for item in text.split(";"):
        seq, _, name = item.strip().partition(" ")
        name = name.strip()
        if seq.isdigit() and name and " " not in name:
            out.append(Command(int(seq), name))
    return out


def unescape_extstate(value: str) -> str:
    r"""Undo the web interface's escaping of ``\``, tab and newline in an EXTSTATE reply line."""
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append({"t": "\t", "n": "\n", "\\": "\\"}.get(value[i + 1], value[i:i + 2]))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_extstate_reply(body: str, section: str, key: str) -> str | None:
    """The value in a ``EXTSTATE\\t<section>\\t<key>\\t<value>`` reply line, or None if absent."""
    prefix = f"EXTSTATE\t{section}\t{key}\t"
    for line in body.split("\n"):
        if line.startswith(prefix):
            return unescape_extstate(line[len(prefix):].rstrip("\r"))
    return None


def set_command(key: str, value: str, limit: int = MAX_COMMAND_BYTES) -> str:
    """The web-interface command setting ``mixbridge/<key>`` to ``value``, cut to ``limit`` bytes."""
    head = f"SET/EXTSTATE/{SECTION}/{urllib.parse.quote(key, safe='')}/"
    command = head + urllib.parse.quote(value, safe="")
    if len(command) <= limit:
        return command
    low, high = 0, len(value)  # the longest prefix whose quoted command (with "…") fits
    while low < high:
        mid = (low + high + 1) // 2
        if len(head + urllib.parse.quote(value[:mid] + "…", safe="")) <= limit:
            low = mid
        else:
            high = mid - 1
    return head + urllib.parse.quote(value[:low] + "…", safe="")


class ExtStateCommands:
    """Polls the scripts' requests; never raises because REAPER is down.

    Parameters
    ----------
    host, web_port : str, int
        REAPER's web interface (reapy's is 2307).
    timeout_s : float
        Per-HTTP-request timeout; a poll while REAPER is stalled costs at most this.

    Notes
    -----
    The first successful poll only records the newest sequence number: a request left while no bridge
    was listening is stale (its script has stopped waiting) and is not run later by surprise. After that
    every new sequence number is returned exactly once. A sequence that went backwards (REAPER's
    persisted counter was reset) starts a new epoch.
    """

    def __init__(self, host: str = DEFAULTS.host, web_port: int = DEFAULTS.web_port, timeout_s: float = 1.0) -> None:
        self.base = f"http://{host}:{int(web_port)}/_/"
        self.timeout_s = timeout_s
        self.available = False
        self.last_error: str | None = None
        self._last_seq: int | None = None
        # Loopback traffic must not go through an http_proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _request(self, command: str) -> str | None:
        try:
            with self._opener.open(self.base + command, timeout=self.timeout_s) as response:
                body = response.read().decode("utf-8", errors="replace")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.available = False
            self.last_error = str(getattr(exc, "reason", exc))
            return None
        self.available = True
        self.last_error = None
        return body

    def get(self, key: str) -> str | None:
        """``GET/EXTSTATE/mixbridge/<key>``; None when REAPER cannot be reached."""
        body = self._request(f"GET/EXTSTATE/{SECTION}/{urllib.parse.quote(key, safe='')}")
        if body is None:
            return None
        value = parse_extstate_reply(body, SECTION, key)
        return "" if value is None else value

    def set(self, key: str, value: str) -> bool:
        """``SET/EXTSTATE/mixbridge/<key>/<value>`` (not persisted); False when REAPER is down.

        A value whose command would not fit :data:`MAX_COMMAND_BYTES` is cut (at a character, with
        "…"), never sent for REAPER to cut in the middle of a ``%xx`` escape.
        """
        return self._request(set_command(key, value)) is not None

    def poll(self) -> list[Command]:
        """New requests since the last poll, oldest first; ``[]`` when REAPER is down.

        An unknown command is answered ("unknown command") and not returned.
        """
        text = self.get(REQUESTS_KEY)
        if text is None:
            return []
        entries = parse_requests(text)
        newest = max((c.seq for c in entries), default=0)
        if self._last_seq is None:
            self._last_seq = newest
            return []
        if entries and newest < self._last_seq:
            self._last_seq = 0  # the counter was reset: everything queued is new
        fresh: dict[int, Command] = {}
        for command in entries:
            if command.seq > self._last_seq and command.seq not in fresh:
                fresh[command.seq] = command
        self._last_seq = max(self._last_seq, newest)
        out = []
        for seq in sorted(fresh):
            command = fresh[seq]
            if command.name in COMMANDS:
                out.append(command)
            else:
                self.reply(seq, f"unknown command {command.name!r}")
        return out

    def reply(self, seq: int, text: str) -> bool:
        """Answer request ``seq`` (the script waiting for it shows ``text``); False if REAPER is down."""
        clean = " ".join(str(text).split())  # one line: the script shows it in a tooltip
        return self.set(REPLY_KEY, f"{int(seq)} {clean}")
