"""Settings and the roles file.  Loud about typos: unknown keys and roles are errors, not guesses.

Roles file (TOML or JSON)::

    manual = ["Drum_Bus"]   # tracks the producer mixes by hand: findings only

    [roles]                 # stem name -> role
    "Vox_Take3" = "lead_vocal"
    "Gtr_DI"    = "guitar"

    [role_offsets]          # role -> target level against the lead vocal, LU
    pad = -12

    [groups]                # parts of one source: no masking moves between them, one level target
    "Drums" = ["Kick In", "Kick Out", "Snare Top", "OH L", "OH R"]
    "Tom 1" = ["Tom 1"]     # a group of one keeps a stem out of automatic grouping

The same tables may live in ``pyproject.toml`` under ``[tool.mixbridge]`` or in ``mixbridge.toml``
beside the stems ("config"); a roles file given on the command line overrides them.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputFileError
from .suggest.roles import ROLES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_KNOWN_KEYS = {"roles", "role_offsets", "manual", "groups"}


@dataclass(frozen=True, slots=True)
class RoleConfig:
    """Role overrides, level offsets, manual tracks and source groups, with where each came from.

    ``groups`` maps a group name to the stems that are parts of one source (the mics of a kit, a
    double, an L/R pair).  Stems named in a group are taken out of automatic grouping; a group of
    one keeps a stem on its own.
    """

    roles: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    role_offsets: dict[str, float] = field(default_factory=dict)
    manual: tuple[str, ...] = ()
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    groups_source: str = "roles file"

    def merged(self, other: "RoleConfig") -> "RoleConfig":
        """``other`` wins where both say something (a stem it groups leaves ``self``'s groups)."""
        taken = {m for members in other.groups.values() for m in members}
        groups = {name: tuple(m for m in members if m not in taken) for name, members in self.groups.items()
                  if name not in other.groups}
        groups = {name: members for name, members in groups.items() if members}
        groups.update(other.groups)
        return RoleConfig({**self.roles, **other.roles}, {**self.sources, **other.sources},
                          {**self.role_offsets, **other.role_offsets},
                          tuple(sorted(set(self.manual) | set(other.manual))), groups,
                          other.groups_source if other.groups else self.groups_source)


def _parse(data: dict[str, Any], where: str, source: str) -> RoleConfig:
    unknown = set(data) - _KNOWN_KEYS
    if unknown:
        raise InputFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                             f"expected {', '.join(sorted(_KNOWN_KEYS))}", code="E_ROLES")
    roles = data.get("roles", {}) or {}
    if not isinstance(roles, dict):
        raise InputFileError(f"{where}: [roles] must map stem names to roles", code="E_ROLES")
    for name, role in roles.items():
        if role not in ROLES:
            raise InputFileError(f"{where}: stem {name!r} has unknown role {role!r}; roles are "
                                 + ", ".join(ROLES), code="E_ROLES")
    offsets = data.get("role_offsets", {}) or {}
    for role, value in offsets.items():
        if role not in ROLES or not isinstance(value, (int, float)):
            raise InputFileError(f"{where}: role_offsets.{role} must be a known role with a number", code="E_ROLES")
    manual = data.get("manual", []) or []
    if not isinstance(manual, list) or not all(isinstance(m, str) for m in manual):
        raise InputFileError(f"{where}: manual must be a list of track names", code="E_ROLES")
    groups = data.get("groups", {}) or {}
    if not isinstance(groups, dict):
        raise InputFileError(f"{where}: [groups] must map group names to lists of stem names", code="E_ROLES")
    seen: dict[str, str] = {}
    for name, members in groups.items():
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            raise InputFileError(f"{where}: groups.{name} must be a non-empty list of stem names", code="E_ROLES")
        for member in members:
            if member in seen:
                raise InputFileError(f"{where}: stem {member!r} is in groups {seen[member]!r} and {name!r}; "
                                     "a stem belongs to one source", code="E_ROLES")
            seen[member] = name
    return RoleConfig(dict(roles), {n: source for n in roles}, {k: float(v) for k, v in offsets.items()},
                      tuple(sorted(manual)), {str(k): tuple(v) for k, v in sorted(groups.items())}, source)


def read_roles_file(path: str | Path) -> RoleConfig:
    """Read a roles file (``.toml`` or ``.json``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(f"{path}: {exc.strerror or exc}", code="E_ROLES") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise InputFileError(f"{path}: {exc}", code="E_ROLES") from exc
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: expected a table/object at the top", code="E_ROLES")
    return _parse(data, str(path), "roles file")


def read_config(folder: str | Path) -> RoleConfig:
    """``mixbridge.toml`` in ``folder``, else ``[tool.mixbridge]`` of a ``pyproject.toml`` there."""
    folder = Path(folder)
    own = folder / "mixbridge.toml"
    if own.is_file():
        return _parse(tomllib.loads(own.read_text(encoding="utf-8")), str(own), "config")
    project = folder / "pyproject.toml"
    if project.is_file():
        data = tomllib.loads(project.read_text(encoding="utf-8")).get("tool", {}).get("mixbridge")
        if isinstance(data, dict):
            return _parse(data, f"{project} [tool.mixbridge]", "config")
    return RoleConfig()
