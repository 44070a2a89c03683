"""One frozen :class:`Settings`, built once per command from the command line and the config files.

Everything a command can be told lives here, grouped by what it is about:

- :class:`Connection`: how to reach REAPER (reapy's web interface, REAPER's OSC surface).  These are
  the only connection defaults in the code: the CLI's options default to "not given" and fall back
  to these;
- :class:`WatchTimings`: how the watcher decides that files and bounces are complete, and retries;
- :class:`SurfaceOptions`: the ``/mixbridge`` control-surface server; :class:`ReviewPageOptions`: the
  review web page;
- the roles (``mixbridge.toml`` / ``[tool.mixbridge]`` beside the stems, then ``--roles FILE``),
  read once by :func:`load_settings`; the amount, the reference, markers, jobs;
- the paths: the stems folder and its state folder ``<stems>/.mixbridge/`` (:class:`StatePaths`),
  where the watcher's journal, the analysis cache, the plan target's files and the OSC target's
  tag file live.  Commands that only read and print (``analyze``, ``plan``) have no state folder.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import RoleConfig, read_config, read_roles_file
from .errors import UsageError

#: The state folder's name, beside the stems (hidden: the watcher and folder scans skip it).
STATE_DIR_NAME = ".mixbridge"
#: Where the bridge listens (OSC feedback, control surfaces) unless told otherwise.
LOOPBACK = "127.0.0.1"
#: Where each target may land a plan.
TARGET_KINDS = ("plan", "reaper", "osc")


@dataclass(frozen=True, slots=True)
class Connection:
    """How to reach REAPER.  Loopback unless told otherwise.

    Attributes
    ----------
    host : str
        REAPER's host.
    web_port : int
        REAPER's web interface (reapy's 2307): the reapy target and the scripts' requests.
    osc_port : int
        REAPER's OSC surface listen port (the OSC target sends here).
    osc_listen : int
        Port on 127.0.0.1 where the OSC target receives REAPER's feedback.
    timeout_s : float
        Deadline for each REAPER call.
    osc_rate : float
        Most OSC messages per second the OSC target sends.
    """

    host: str = LOOPBACK
    web_port: int = 2307
    osc_port: int = 8000
    osc_listen: int = 9000
    timeout_s: float = 5.0
    osc_rate: float = 200.0


@dataclass(frozen=True, slots=True)
class WatchTimings:
    """When the watcher decides things, in seconds (docs/workflow.md).

    Attributes
    ----------
    settle_s : float
        Without a manifest, a bounce is complete this long after the last file event.
    poll_s, stable_polls : float, int
        A file is stable when its size and mtime are unchanged for ``stable_polls`` looks ``poll_s`` apart.
    incomplete_timeout_s : float
        A stable file whose header still disagrees with its length is given up on after this long.
    manifest_timeout_s : float
        How long a manifest's pass waits for the files it lists; the missing ones become errors.
    manifest_grace_s : float
        In a folder that has a manifest, stems that arrive without a new one wait this long for it.
    max_batch_wait_s : float
        A stream of events that never settles still gets a pass this often.
    retry_initial_s, retry_max_s : float
        Back-off for a plan REAPER did not take (doubling).
    commands_poll_s : float
        How often the in-REAPER scripts' requests are polled.
    stop_timeout_s : float
        How long stopping may take before the pass under way is left to re-run on the next start.
    """

    settle_s: float = 2.0
    poll_s: float = 0.25
    stable_polls: int = 2
    incomplete_timeout_s: float = 30.0
    manifest_timeout_s: float = 60.0
    manifest_grace_s: float = 20.0
    max_batch_wait_s: float = 120.0
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0
    commands_poll_s: float = 1.0
    stop_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class SurfaceOptions:
    """The ``/mixbridge`` OSC control-surface server (docs/osc.md)."""

    enabled: bool = False
    bind: str = LOOPBACK
    port: int = 9100
    allow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReviewPageOptions:
    """The local review web page (docs/review.md): loopback unless bound elsewhere with an allow-list."""

    enabled: bool = False
    bind: str = LOOPBACK
    port: int = 9180
    allow: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StatePaths:
    """The layout of a state folder (``<stems>/.mixbridge/``)."""

    root: Path

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def passes_dir(self) -> Path:
        return self.root / "passes"

    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def last_pass(self) -> Path:
        return self.root / "last-pass.json"

    @property
    def osc_tags(self) -> Path:
        """The OSC target's tag file (OSC cannot store ``P_EXT`` in the project)."""
        return self.root / "osc-state.json"

    def pass_dir(self, number: int) -> Path:
        return self.passes_dir / f"{number:04d}"

    @property
    def renders_dir(self) -> Path:
        """The review page's offline renders (a bounded cache, docs/review.md)."""
        return self.root / "renders"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything one command was told (see the module docstring).

    Attributes
    ----------
    stems : Path or None
        The stems folder: its roles config and its state folder.  ``None``: files only.
    paths : tuple of Path
        What to analyse; empty means ``(stems,)``.
    stateful : bool
        Whether the command keeps state in ``<stems>/.mixbridge/`` (watch, demo, surface, apply, revert, ab).
    target : str
        ``plan`` (no DAW), ``reaper`` (reapy) or ``osc``.
    review : bool or None
        Hold suggestions until accepted; ``None``: on exactly when the surface or the review page runs.
    markers : tuple or None
        Sections as ``(name, start_s, end_s or None)``; detected from the mix when absent.
    render : bool
        Also render each pass offline (:mod:`bridge.render`) into its pass folder, so the notes can
        play the AI pass level-matched against the bounce (``watch --render``; on in the demo).
    """

    stems: Path | None = None
    paths: tuple[Path, ...] = ()
    stateful: bool = True
    target: str = "plan"
    connection: Connection = field(default_factory=Connection)
    timings: WatchTimings = field(default_factory=WatchTimings)
    surface: SurfaceOptions = field(default_factory=SurfaceOptions)
    page: ReviewPageOptions = field(default_factory=ReviewPageOptions)
    review: bool | None = None
    roles: RoleConfig = field(default_factory=RoleConfig)
    amount: float = 1.0
    reference: Path | None = None
    markers: tuple[tuple[str, float, float | None], ...] | None = None
    jobs: int | None = None
    recursive: bool = False
    name_pattern: str | None = None
    render: bool = False

    def __post_init__(self) -> None:
        if self.target not in TARGET_KINDS:
            raise UsageError(f"target {self.target!r} is not one of {', '.join(TARGET_KINDS)}")
        if not 0.0 <= float(self.amount) <= 1.0:
            raise UsageError(f"--amount must be between 0 and 1, not {self.amount:g}")
        if self.name_pattern:
            try:
                re.compile(self.name_pattern)
            except re.error as exc:
                raise UsageError(f"--name-pattern: {exc}") from exc

    @property
    def inputs(self) -> tuple[Path, ...]:
        """The paths to analyse."""
        if self.paths:
            return self.paths
        return (self.stems,) if self.stems is not None else ()

    @property
    def state(self) -> StatePaths | None:
        """The state folder, or ``None`` for a command that keeps none."""
        if self.stems is None or not self.stateful:
            return None
        return StatePaths(Path(self.stems) / STATE_DIR_NAME)

    @property
    def review_mode(self) -> bool:
        if self.review is None:
            return self.surface.enabled or self.page.enabled
        return bool(self.review)


def load_roles(stems: Path | None, roles_file: str | Path | None = None) -> RoleConfig:
    """The roles: the stems folder's config, then a roles file over it (the file wins).

    Raises
    ------
    RolesError
        ``E_ROLES``: a malformed ``mixbridge.toml``, ``pyproject.toml`` or roles file (one line, with the spot).
    """
    roles = RoleConfig()
    if stems is not None and Path(stems).is_dir():
        roles = roles.merged(read_config(stems))
    if roles_file:
        roles = roles.merged(read_roles_file(roles_file))
    return roles
