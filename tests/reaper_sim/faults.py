"""Fault injection: stall, drop and die, armed by tests through the control channel.

Nothing here is random. A fault either happens now (``stall``, ``drop``,
``die`` commands) or is *armed* to fire once, at the N-th RPR call after arming
or at the next call of a named RPR function, before that call runs:

* ``stall`` stops REAPER's main loop, like a modal dialog: no deferred code,
  no web-interface answers, no reapy replies. When it fires inside an RPR call
  the call itself blocks, so the client is left waiting for that reply. It ends
  after ``seconds`` or at ``release``.
* ``drop`` closes every reapy client connection server-side; the client sees
  ``ConnectionAbortedError`` (or a reset) and can ``reapy.reconnect()``.  Inside a client's
  HOLD it also kills reapy's server loop (reapy's own code then writes to the closed socket),
  exactly as a connection lost during a HOLD would in REAPER: see ``server.ReapyHost``.
* ``die`` ends the process with ``os._exit(exit_code)``: no state file, no
  at-exit hooks, exactly a crash.
* ``kill_server`` ends reapy's server loop inside REAPER the way any error escaping
  reapy's server code does (a "deferred script execution error"): the call that
  fires it raises :class:`ServerKilled`, which reapy's ``except Exception`` does not
  catch, so the deferred chain ends with that call unanswered.  REAPER lives on, the
  server's sockets stay open and ``reapy/server_port`` stays published (a stale
  server), exactly as after a connection lost in a HOLD.

Threading: the control thread arms and releases; the REAPER main thread calls
:meth:`Faults.before_rpr_call` and :meth:`Faults.between_ticks`.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

FAULT_KINDS = ("stall", "drop", "die", "kill_server")


class ServerKilled(BaseException):
    """Raised inside an RPR call by a ``kill_server`` fault: nothing in reapy's server catches it."""
#: Exit status of a ``die`` fault unless the test chooses another.
DEFAULT_DIE_EXIT_CODE = 86


@dataclass(slots=True)
class ArmedFault:
    """A one-shot fault waiting for its trigger."""

    kind: str
    on_function: str | None = None
    at_call: int | None = None
    seconds: float | None = None
    exit_code: int = DEFAULT_DIE_EXIT_CODE
    calls_seen: int = 0

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "on_function": self.on_function, "at_call": self.at_call,
                "seconds": self.seconds, "exit_code": self.exit_code,
                "calls_seen": self.calls_seen}


def die(exit_code: int, reason: str) -> None:
    """Crash the process now, after making sure the reason reached stderr."""
    sys.stderr.write(f"reaper_sim: dying ({reason}), exit code {exit_code}\n")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(exit_code)


class Faults:
    """Fault state shared by the control thread and REAPER's main thread.

    Parameters
    ----------
    drop_connections : callable
        Closes every reapy client connection; called on the main thread only,
        returns how many were closed.
    stop : threading.Event
        Set when the simulator shuts down; ends any stall.
    """

    def __init__(self, drop_connections: Callable[[], int], stop: threading.Event) -> None:
        self._drop_connections = drop_connections
        self._stop = stop
        self._cond = threading.Condition()
        self._stall_until = 0.0  # monotonic deadline; math.inf = until release
        self._armed: list[ArmedFault] = []
        self._drop_requests = 0
        self._drops_done = 0
        self._last_drop_count = 0

    # -- control thread ---------------------------------------------------

    def stall(self, seconds: float | None = None) -> None:
        """Stop answering for ``seconds``, or until :meth:`release` when None."""
        with self._cond:
            self._stall_until = math.inf if seconds is None else time.monotonic() + seconds
            self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._stall_until = 0.0
            self._cond.notify_all()

    def arm(self, kind: str, on_function: str | None = None, at_call: int | None = None,
            seconds: float | None = None, exit_code: int = DEFAULT_DIE_EXIT_CODE) -> ArmedFault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known {FAULT_KINDS}")
        if (on_function is None) == (at_call is None):
            raise ValueError("arm needs exactly one trigger: on_function or at_call")
        if at_call is not None and at_call < 1:
            raise ValueError("at_call counts from 1 (the next RPR call)")
        fault = ArmedFault(kind, on_function, at_call, seconds, exit_code)
        with self._cond:
            self._armed.append(fault)
        return fault

    def disarm(self) -> int:
        with self._cond:
            count, self._armed = len(self._armed), []
        return count

    def armed(self) -> list[dict[str, object]]:
        with self._cond:
            return [fault.describe() for fault in self._armed]

    def request_drop(self, timeout_s: float) -> int:
        """Ask the main thread to drop all connections and wait until it has.

        Raises
        ------
        TimeoutError
            When the main thread does not get to it in time (a client HOLD
            without further calls, or a stall).
        """
        with self._cond:
            self._drop_requests += 1
            ticket = self._drop_requests
            if not self._cond.wait_for(lambda: self._drops_done >= ticket, timeout_s):
                raise TimeoutError("main loop did not service the drop in time")
            return self._last_drop_count

    # -- main thread --------------------------------------------------------

    def between_ticks(self) -> None:
        """Main-loop hook: serve pending drops, then wait out any stall."""
        self._serve_drop()
        self._wait_while_stalled()

    def before_rpr_call(self, name: str) -> None:
        """RPR-call hook: fire armed faults, serve drops requested during a HOLD."""
        fired: list[ArmedFault] = []
        with self._cond:
            for fault in list(self._armed):
                fault.calls_seen += 1
                if fault.on_function == name or fault.at_call == fault.calls_seen:
                    self._armed.remove(fault)
                    fired.append(fault)
        for fault in fired:
            if fault.kind == "die":
                die(fault.exit_code, f"armed on {name}")
            elif fault.kind == "drop":
                with self._cond:
                    self._drop_requests += 1
            elif fault.kind == "stall":
                self.stall(fault.seconds)
            elif fault.kind == "kill_server":
                raise ServerKilled(f"kill_server fault armed on {name}")
        self._serve_drop()
        self._wait_while_stalled()

    def _serve_drop(self) -> None:
        with self._cond:
            pending = self._drop_requests > self._drops_done
        if not pending:
            return
        count = self._drop_connections()
        with self._cond:
            self._last_drop_count = count
            self._drops_done = self._drop_requests
            self._cond.notify_all()

    def _wait_while_stalled(self) -> None:
        with self._cond:
            while not self._stop.is_set():
                remaining = self._stall_until - time.monotonic()
                if remaining <= 0:
                    return
                # Bounded waits so a shutdown request ends the stall promptly.
                self._cond.wait(min(remaining, 0.05))
