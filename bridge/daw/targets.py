"""Make the target a command asked for, from the settings.  Never connects.

The DAW targets' modules are imported only here and only when asked for, so ``import bridge`` (and
the ``plan`` target) never loads reapy or pythonosc.
"""
from __future__ import annotations

from ..errors import UsageError
from ..settings import TARGET_KINDS, Settings
from .base import Target


def make_target(settings: Settings) -> Target:
    """The target named by ``settings.target`` (``plan``, ``reaper`` or ``osc``).

    The ``plan`` target keeps its files in the state folder (in memory without one); the OSC
    target's tag file is always the state folder's ``osc-state.json``.

    Raises
    ------
    UsageError
        ``E_USAGE``: the OSC target without a state folder (it needs one for its tags).
    """
    c = settings.connection
    state = settings.state
    if settings.target == "plan":
        from .plan_target import PlanTarget  # noqa: PLC0415

        return PlanTarget(state.root if state is not None else None)
    if settings.target == "reaper":
        from .reapy_target import LazyReaperTarget  # noqa: PLC0415 - reapy loads only on first use

        return LazyReaperTarget(c.host, c.web_port, c.timeout_s)
    if settings.target == "osc":
        if state is None:
            raise UsageError("the OSC target keeps its tags in <stems>/.mixbridge/osc-state.json: "
                             "name the stems folder with --stems DIR")
        from .osc_target import OscTarget  # noqa: PLC0415 - pythonosc loads only when needed

        return OscTarget(c.host, c.osc_port, c.osc_listen, c.timeout_s, c.osc_rate, state_path=state.osc_tags)
    raise UsageError(f"unknown target {settings.target!r} (one of {', '.join(TARGET_KINDS)})")
