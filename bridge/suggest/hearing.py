"""Hearing what a stem is: the shipped role model in plain numpy, and the name-vs-ear decision (issue 14).

:class:`RoleModel` reads ``roles_model.json`` (written by ``tools/train_roles.py``; see
``docs/roles.md``) and turns descriptor vectors (:mod:`bridge.analyze.descriptors`) into class
probabilities with numpy alone: a softmax layer, a small multi-layer perceptron, boosted trees, or
an ensemble averaging several of them.

:func:`decide_role` is the one place where a stem's role is decided from what is known about it:

1. A role from the roles file or config decides (``role_source`` ``"roles file"`` / ``"config"``).
2. A name that clearly says a role decides (``"name"``).  If the ear is sure (probability at least
   the model's ``conflict_probability``) of a role that does not fit the name, a ``role_conflict``
   finding says so ("named 'Bass' but sounds like keys, 0.93"); the name's role is still used.
   Vocal names are never questioned: the ear's vocal classes learnt from proxies (docs/roles.md).
3. A name that says nothing ("Audio 03", "Track 7", "Stem_12", a number) takes the heard role when
   its probability reaches the model's ``accept_probability`` (``"heard"``, with the probability);
   otherwise the stem stays ``neutral``, with a finding naming the ear's best guesses.

Pure: descriptors and analyses in, frozen dataclasses out.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from . import roles as R
from .model import Finding

SCHEMA = "mixbridge-roles-model/1"
MODEL_PATH = Path(__file__).with_name("roles_model.json")

#: Role sources a decision can have.
SOURCES = ("roles file", "config", "name", "heard")
#: Ear classes that are not role names map here (none today: every class is a role).
_CLASS_ROLES: dict[str, str] = {}
#: Close-mic drum roles whose names the ear may question among themselves.
_CLOSE_KIT = (R.KICK, R.SNARE, R.HATS)
#: Roles that fit a name's role without a conflict, beyond the role itself.
_FITS: dict[str, tuple[str, ...]] = {
    R.TOMS: R.DRUM_KIT, R.OVERHEADS: R.DRUM_KIT, R.ROOM: R.DRUM_KIT, R.DRUMS: R.DRUM_KIT,
    R.KICK: (R.TOMS, R.OVERHEADS, R.ROOM, R.DRUMS), R.SNARE: (R.TOMS, R.OVERHEADS, R.ROOM, R.DRUMS),
    R.HATS: (R.TOMS, R.OVERHEADS, R.ROOM, R.DRUMS),
    R.LEAD_INSTRUMENT: (R.GUITAR, R.KEYS, R.HORNS, R.SYNTH_LEAD, R.SYNTH),
    R.SYNTH: (R.SYNTH_LEAD, R.KEYS, R.PAD, R.FX),
    R.SYNTH_LEAD: (R.SYNTH, R.HORNS, R.LEAD_INSTRUMENT, R.LEAD_VOCAL, R.BACKING_VOCAL),
    R.KEYS: (R.PAD, R.SYNTH, R.LEAD_INSTRUMENT),
    R.PAD: (R.KEYS, R.SYNTH, R.FX, R.BACKING_VOCAL),
    R.HORNS: (R.SYNTH_LEAD, R.LEAD_INSTRUMENT, R.KEYS, R.SYNTH),
    R.GUITAR: (R.LEAD_INSTRUMENT,),
    R.BASS: (),
}
_VOCALS = (R.LEAD_VOCAL, R.BACKING_VOCAL)


def role_of_class(cls: str) -> str:
    """The MixBridge role an ear class stands for."""
    role = _CLASS_ROLES.get(cls, cls)
    if role not in R.ROLES:
        raise ValueError(f"ear class {cls!r} maps to no role")
    return role


def fits(named: str, heard: str) -> bool:
    """Does a heard role fit the role a name says (no conflict worth a finding)?"""
    if named == heard or named in _VOCALS or named == R.FX:
        return True
    return heard in _FITS.get(named, ())


# ------------------------------------------------------------------------------------------- the model

def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


_ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "tanh": np.tanh,
    "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "identity": lambda z: z,
    "softmax": _softmax,
}


#: Packed tree nodes (base64 in the JSON): split feature, threshold, children (indices into the
#: whole table), leaf value.
NODE_DTYPE = np.dtype([("feature", "<i2"), ("threshold", "<f8"), ("left", "<u4"), ("right", "<u4"),
                       ("leaf", "u1"), ("value", "<f8")])


def pack_nodes(feature, threshold, left, right, leaf, value) -> str:
    """Tree nodes as base64 text (:data:`NODE_DTYPE`), float64 kept exact."""
    nodes = np.zeros(len(feature), dtype=NODE_DTYPE)
    nodes["feature"], nodes["threshold"], nodes["left"] = feature, threshold, left
    nodes["right"], nodes["leaf"], nodes["value"] = right, leaf, value
    return base64.b64encode(nodes.tobytes()).decode("ascii")


class _Forest:
    """Every tree of a boosted model in one node table, walked together: one numpy step per depth
    for all trees and rows (a Python loop per tree would cost a hundred times more)."""

    def __init__(self, packed: str, roots: list[int], n_classes: int):
        nodes = np.frombuffer(base64.b64decode(packed), dtype=NODE_DTYPE)
        self.feature = nodes["feature"].astype(np.int64)
        self.threshold = nodes["threshold"].astype(np.float64)
        self.left = nodes["left"].astype(np.int64)
        self.right = nodes["right"].astype(np.int64)
        self.leaf = nodes["leaf"].astype(bool)
        self.value = nodes["value"].astype(np.float64)
        self.roots = np.asarray(roots, dtype=np.int64)
        # Trees are stored stage by stage, one per class: tree t adds to class t % n_classes.
        self.onehot = np.zeros((len(self.roots), n_classes))
        self.onehot[np.arange(len(self.roots)), np.arange(len(self.roots)) % n_classes] = 1.0

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Summed leaf values per class, shape ``(rows, classes)`` (``x <= threshold`` goes left,
        as in scikit-learn)."""
        node = np.tile(self.roots, (len(X), 1))
        rows = np.arange(len(X))[:, None]
        while True:
            inner = ~self.leaf[node]
            if not inner.any():
                return self.value[node] @ self.onehot
            go_left = X[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)


class _Predictor:
    """One model of the document: standardisation, then softmax layers / a perceptron / boosted trees,
    or an ``ensemble`` averaging its members' probabilities."""

    def __init__(self, m: dict[str, Any]):
        self.kind = m["kind"]
        if self.kind == "ensemble":
            self._members = [_Predictor(member) for member in m["members"]]
            return
        self._mean = np.asarray(m["mean"], dtype=np.float64)
        self._scale = np.asarray(m["scale"], dtype=np.float64)
        if self.kind in ("logistic", "mlp"):
            self._layers = [(np.asarray(layer["W"], dtype=np.float64), np.asarray(layer["b"], dtype=np.float64),
                             _ACTIVATIONS[layer["activation"]]) for layer in m["layers"]]
        elif self.kind == "trees":
            self._baseline = np.asarray(m["baseline"], dtype=np.float64)
            self._forest = _Forest(m["nodes"], m["roots"], len(self._baseline))
        else:
            raise ValueError(f"unknown model kind {self.kind!r}")

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.kind == "ensemble":
            return np.mean([member.predict_proba(X) for member in self._members], axis=0)
        z = (X - self._mean) / self._scale
        if self.kind == "trees":
            return _softmax(self._baseline + self._forest.raw(z))
        for W, b, act in self._layers:
            z = act(z @ W + b)
        return z


class RoleModel:
    """The shipped role recogniser.

    Attributes
    ----------
    classes : tuple of str
        Ear classes, in output order.
    roles : tuple of str
        The role each class stands for.
    accept_probability, conflict_probability : float
        From the held-out evaluation (docs/roles.md): a nameless stem takes a heard role from
        ``accept_probability``; a clear name is questioned from ``conflict_probability``.
    descriptor_hash, recipe_hash : str
    doc : dict
        The whole JSON document (evaluation figures, recipe, training settings).
    """

    def __init__(self, doc: dict[str, Any]):
        if doc.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document")
        self.doc = doc
        self.classes = tuple(doc["classes"])
        self.roles = tuple(doc["roles"][c] for c in self.classes)
        self.descriptors = tuple(doc["descriptors"])
        self.descriptor_hash = doc["descriptor_hash"]
        self.recipe_hash = doc["recipe_hash"]
        self.accept_probability = float(doc["accept_probability"])
        self.conflict_probability = float(doc["conflict_probability"])
        self.kind = doc["model"]["kind"]
        self._predictor = _Predictor(doc["model"])

    @classmethod
    def load(cls, path: str | Path | None = None) -> "RoleModel":
        return cls(json.loads(Path(path or MODEL_PATH).read_text(encoding="utf-8")))

    @property
    def current(self) -> bool:
        """Trained on the descriptor code that is installed (else its weights mean nothing)."""
        from ..analyze.descriptors import code_hash

        return self.descriptor_hash == code_hash()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n, classes)``, for descriptor vectors ``(n, descriptors)``."""
        return self._predictor.predict_proba(np.atleast_2d(np.asarray(X, dtype=np.float64)))


@lru_cache(maxsize=1)
def shipped_model() -> RoleModel | None:
    """The packaged model, or ``None`` when it is missing or was trained on other descriptor code."""
    try:
        model = RoleModel.load()
    except (OSError, ValueError, KeyError):
        return None
    return model if model.current else None


# ------------------------------------------------------------------------------------------- hearing

@dataclass(frozen=True, slots=True)
class Heard:
    """What the ear says about one stem: its best role, that role's probability, the top three."""

    role: str
    probability: float
    ranking: tuple[tuple[str, float], ...]

    def as_evidence(self) -> dict[str, Any]:
        return {"heard_role": self.role, "heard_probability": round(self.probability, 3),
                "heard_ranking": [[r, round(p, 3)] for r, p in self.ranking]}


def hear(descriptors: np.ndarray | None, model: RoleModel | None) -> Heard | None:
    """The ear's verdict on one descriptor vector (``None`` without a vector or a model)."""
    return hear_all([descriptors], model)[0]


def hear_all(vectors: list[np.ndarray | None], model: RoleModel | None) -> list[Heard | None]:
    """The ear's verdicts on several stems, in one inference (``None`` where there is no vector)."""
    out: list[Heard | None] = [None] * len(vectors)
    rows = [k for k, v in enumerate(vectors) if v is not None]
    if model is None or not rows:
        return out
    proba = model.predict_proba(np.stack([vectors[k] for k in rows]))
    for k, p_row in zip(rows, proba):
        out[k] = heard_from(model.roles, p_row)
    return out


def heard_from(roles: tuple[str, ...], proba: np.ndarray) -> Heard:
    """The verdict one row of class probabilities gives (classes standing for one role summed)."""
    by_role: dict[str, float] = {}
    for role, p in zip(roles, proba):
        by_role[role] = by_role.get(role, 0.0) + float(p)
    ranking = sorted(by_role.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return Heard(ranking[0][0], ranking[0][1], tuple(ranking))


@dataclass(frozen=True, slots=True)
class RoleDecision:
    """A stem's role and why.

    Attributes
    ----------
    role : str
    source : str
        One of :data:`SOURCES`.
    probability : float or None
        The heard probability when the ear decided; ``None`` otherwise.
    named : str
        The role the name says (``neutral`` when it says nothing).
    heard : Heard or None
    finding : Finding or None
        ``role_heard``, ``role_unknown`` or ``role_conflict``.
    """

    role: str
    source: str
    probability: float | None
    named: str
    heard: Heard | None
    finding: Finding | None


def _say(role: str) -> str:
    return role.replace("_", " ")


def decide_role(name: str, heard: Heard | None, given: str | None = None, given_source: str = "roles file",
                accept_probability: float = 0.8, conflict_probability: float = 0.9) -> RoleDecision:
    """Decide one stem's role from its roles-file entry, its name and what the ear heard (module docs)."""
    named = R.infer_role(name)
    if given is not None:
        return RoleDecision(given, given_source, None, named, heard, None)
    if named != R.NEUTRAL:
        finding = None
        if heard is not None and heard.probability >= conflict_probability and not fits(named, heard.role):
            finding = Finding(
                "role_conflict", "warning",
                f"named {name!r} but sounds like {_say(heard.role)}, {heard.probability:.2f}: planned as "
                f"{_say(named)} (the name decides); if the ear is right, set its role in the roles file",
                {"name_suggests": named, **heard.as_evidence()})
        return RoleDecision(named, "name", None, named, heard, finding)
    if heard is not None and heard.probability >= accept_probability:
        finding = Finding(
            "role_heard", "info",
            f"{name!r} says nothing about its part; it sounds like {_say(heard.role)} "
            f"({heard.probability:.2f}), so it is planned as {_say(heard.role)}",
            {"name_suggests": named, **heard.as_evidence()})
        return RoleDecision(heard.role, "heard", round(heard.probability, 3), named, heard, finding)
    finding = None
    if heard is not None:
        guesses = ", ".join(f"{_say(r)} {p:.2f}" for r, p in heard.ranking[:2])
        finding = Finding(
            "role_unknown", "info",
            f"{name!r} says nothing about its part and the ear is not sure ({guesses}): left neutral, so it gets "
            f"findings but no role-specific moves; name it or set its role in the roles file",
            {"name_suggests": named, **heard.as_evidence()})
    return RoleDecision(R.NEUTRAL, "name", None, named, heard, finding)


def decide_roles(stems, roles: dict[str, str] | None = None, sources: dict[str, str] | None = None,
                 model: RoleModel | None = None) -> dict[str, RoleDecision]:
    """Every stem's role decision.

    Parameters
    ----------
    stems : iterable of (name, descriptors or None)
        Descriptors from :func:`bridge.analyze.descriptors.describe` (``None`` for a stem that
        could not be analysed or is silent).
    roles, sources : dict, optional
        The roles file / config: stem name -> role, and where each came from.
    model : RoleModel, optional
        The ear; ``None`` decides by names (and the roles file) alone.
    """
    roles, sources = roles or {}, sources or {}
    accept = model.accept_probability if model is not None else 1.0
    conflict = model.conflict_probability if model is not None else 1.0
    stems = list(stems)
    heard = hear_all([vector if name not in roles else None for name, vector in stems], model)
    return {name: decide_role(name, h, roles.get(name), sources.get(name, "roles file"), accept, conflict)
            for (name, _), h in zip(stems, heard)}
