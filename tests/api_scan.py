"""Find every REAPER API call in the project's Python and Lua and check it against REAPER's own list.

The list is ``tests/data/reaper-api.tsv``: return type, name and C parameters of every function in
the REAPER SDK's ``sdk/reaper_plugin_functions.h`` (7.78), one a line.  What counts as a call:

- **Python** (``bridge/``, the simulator, the shipped ReaScripts): a dispatcher call whose first
  argument names the function (``conn.call("CountTracks", 0)``, ``self._c("GetTrack", 0, i)``),
  an attribute of reapy's RPR module (``RPR.CountTracks(0)``, ``reapy.reascript_api.X``,
  ``self.rpr.X``, ``getattr(self.rpr, "X")``), and a simulator signature ``@rpr("int X(...)")``.
  A name in a variable is resolved when it is statically a string (an assignment, a conditional
  expression, a ``for`` over a tuple of strings, a module or class constant, a dict of strings).
- **Lua** (``reaper_scripts/*.lua``): ``reaper.X(...)``, ``reaper.X "s"``/``reaper.X{...}``, a bare
  ``reaper.X`` (a reference; with ``pcall(reaper.X, ...)`` the arguments after it count), and a
  local alias ``local f = reaper.X`` called later as ``f(...)``.

Argument counts follow REAPER's two calling conventions:

- **Python** (``reaper_python``, which reapy forwards to): every C parameter is passed, outputs and
  buffer sizes included (the generated wrapper is ``def RPR_X(p0, ..., pN-1)``).  A function with an
  output parameter returns ``(retval, *arguments)`` (no retval for ``void``), so a subscript of the
  result must name the retval or an output/in-out slot.
- **Lua**: output parameters (name ending in ``Out``, ``OutOptional``, ``OutNeedBig``...) are return
  values, not arguments; the ``_sz`` of a buffer is not passed; trailing parameters whose name ends in
  ``Optional`` may be left out.  A last argument that is itself a call (or ``...``) may expand to
  several values, so only the lower bound is checked then.

Lua-only built-ins (``reaper.defer``, ``reaper.atexit``, ...) are not in the C header; they are
listed in :data:`LUA_BUILTINS` from REAPER's ReaScript documentation.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

#: Names and attributes that stand for reapy's RPR module (``reapy.reascript_api``).
RPR_MODULES = frozenset({"RPR", "rpr", "reascript_api"})
#: Lua built-ins of REAPER's ReaScript (documented in its ReaScript help, absent from the C header):
#: name -> (min, max) arguments.
LUA_BUILTINS = {"defer": (1, 1), "atexit": (1, 1), "runloop": (1, 1), "get_action_context": (0, 0),
                "set_action_options": (1, 1)}

_OUTPUT_TYPES = frozenset({"char*", "int*", "double*", "bool*", "float*", "INT64*", "unsigned int*",
                           "const char**", "char**"})
_OUT_NAME = re.compile(r"(?<!In)Out(Optional|NeedBig|WantNeedBig)?$")


# ------------------------------------------------------------------------------------------------
# REAPER's list
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Param:
    ctype: str
    name: str

    @property
    def is_pointer_output(self) -> bool:
        """A slot the Python wrapper writes back into its result tuple."""
        return self.ctype in _OUTPUT_TYPES


@dataclass(frozen=True, slots=True)
class ApiFunction:
    """One line of ``reaper-api.tsv``."""

    ret: str
    name: str
    params: tuple[Param, ...]

    @property
    def python_arity(self) -> int:
        return len(self.params)

    @property
    def returns_tuple(self) -> bool:
        return any(p.is_pointer_output for p in self.params)

    def lua_inputs(self) -> list[Param]:
        """The parameters a Lua caller passes, in order."""
        buffers = {p.name for p in self.params if p.ctype in ("char*", "char**")}
        out = []
        for p in self.params:
            if p.ctype == "int" and p.name.endswith("_sz") and p.name[:-3] in buffers:
                continue
            if _OUT_NAME.search(p.name):
                continue
            out.append(p)
        return out

    def lua_arity(self) -> tuple[int, int]:
        """(fewest, most) arguments a Lua call may pass."""
        inputs = self.lua_inputs()
        required = len(inputs)
        while required and inputs[required - 1].name.endswith("Optional"):
            required -= 1
        return required, len(inputs)

    def tuple_slot(self, index: int) -> str | None:
        """What Python result ``[index]`` is: ``"retval"``, an output parameter's name, or None if invalid."""
        if not self.returns_tuple:
            return None
        slots = ([] if self.ret == "void" else ["retval"]) + list(self.params)
        if not -len(slots) <= index < len(slots):
            return None
        slot = slots[index]
        if slot == "retval":
            return "retval"
        return slot.name if slot.is_pointer_output else None

    @property
    def tuple_length(self) -> int:
        return len(self.params) + (0 if self.ret == "void" else 1)


def _split_params(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _param(text: str) -> Param:
    text = " ".join(text.split()).replace(" *", "*")
    if "(" in text:  # a function pointer: int (*cmpfunc)(const void*,const void*)
        name = re.search(r"\(\*(\w+)\)", text)
        return Param(text, name.group(1) if name else text)
    ctype, _, name = text.rpartition(" ")
    return Param(ctype.replace(" *", "*"), name)


def load_api(path: Path) -> dict[str, ApiFunction]:
    api = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        ret, name, params = line.split("\t")
        api[name] = ApiFunction(" ".join(ret.split()).replace(" *", "*"), name,
                                tuple(_param(p) for p in _split_params(params)))
    return api


# ------------------------------------------------------------------------------------------------
# What the project calls
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Call:
    """One use of a REAPER function.

    ``nargs`` is None for a bare reference; ``at_least`` means the count is a lower bound (a Python
    ``*args``, a Lua last argument that may expand); ``subscripts`` are the Python result indices
    read; ``unpacked`` is the length of a fixed tuple unpacking of the result, if any; ``declared``
    is a simulator signature (checked for types too).
    """

    path: Path
    line: int
    name: str
    language: str  # "python" or "lua"
    nargs: int | None
    at_least: bool = False
    subscripts: tuple[int, ...] = ()
    unpacked: int | None = None
    declared: ApiFunction | None = None

    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A dispatcher call whose function name is not statically a string."""

    path: Path
    line: int
    text: str


@dataclass
class Scan:
    calls: list[Call] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)

    def extend(self, other: "Scan") -> None:
        self.calls += other.calls
        self.unresolved += other.unresolved


# --- Python ----------------------------------------------------------------------------------------

class _Strings:
    """Statically known string values of names, per scope (module, class, function)."""

    def __init__(self, tree: ast.Module) -> None:
        self.module: dict[str, set[str]] = {}
        self.attributes: dict[str, set[str]] = {}
        self.module = self._collect(tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for name, values in self._collect(node.body).items():
                    self.attributes.setdefault(name, set()).update(values)

    def _collect(self, body: Iterable[ast.stmt]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for stmt in body:
            targets: list[ast.expr] = []
            value = None
            if isinstance(stmt, ast.Assign):
                targets, value = stmt.targets, stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                targets, value = [stmt.target], stmt.value
            for target in targets:
                if isinstance(target, ast.Name):
                    values = self.values(value, found)
                    if values:
                        found.setdefault(target.id, set()).update(values)
        return found

    def values(self, node: ast.expr | None, scope: dict[str, set[str]] | None = None) -> set[str] | None:
        """Every string ``node`` can be, or None when that is not static."""
        scope = scope or {}
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            a, b = self.values(node.body, scope), self.values(node.orelse, scope)
            return a | b if a is not None and b is not None else None
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            parts = [self.values(e, scope) for e in node.elts]
            return set().union(*parts) if parts and all(p is not None for p in parts) else None
        if isinstance(node, ast.Dict):
            parts = [self.values(v, scope) for v in node.values]
            return set().union(*parts) if parts and all(p is not None for p in parts) else None
        if isinstance(node, ast.Subscript) and isinstance(node.value, (ast.Dict, ast.Name)):
            return self.values(node.value, scope)
        if isinstance(node, ast.Name):
            if node.id in scope:
                return scope[node.id]
            return self.module.get(node.id)
        if isinstance(node, ast.Attribute):
            return self.attributes.get(node.attr)
        return None


def _function_scopes(tree: ast.Module, strings: _Strings) -> dict[int, dict[str, set[str]]]:
    """Per function node id: names bound to static strings inside it (assignments and for loops)."""
    scopes: dict[int, dict[str, set[str]]] = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        scope: dict[str, set[str]] = {}
        body = fn.body if isinstance(fn.body, list) else []
        for node in (n for stmt in body for n in ast.walk(stmt)):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        values = strings.values(node.value, scope)
                        if values:
                            scope.setdefault(target.id, set()).update(values)
            elif isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.target, ast.Name):
                values = strings.values(node.iter, scope)
                if values:
                    scope.setdefault(node.target.id, set()).update(values)
        # lambda defaults (``lambda name="X": ...``) and keyword defaults bind static strings too
        args = fn.args
        for arg, default in zip(args.args[len(args.args) - len(args.defaults):], args.defaults):
            values = strings.values(default, scope)
            if values:
                scope[arg.arg] = values
        scopes[id(fn)] = scope
    return scopes


def _is_rpr_module(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in RPR_MODULES
    if isinstance(node, ast.Attribute):
        return node.attr in RPR_MODULES
    return False


def _nargs(call: ast.Call, skip: int) -> tuple[int, bool]:
    args = call.args[skip:]
    starred = any(isinstance(a, ast.Starred) for a in args) or any(k.arg is None for k in call.keywords)
    count = sum(1 for a in args if not isinstance(a, ast.Starred)) + sum(1 for k in call.keywords if k.arg)
    return count, starred


def _func_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def find_dispatchers(trees: Iterable[ast.Module]) -> set[str]:
    """Names of functions that call an RPR function named by one of their parameters.

    ``ReapyConnection.call(self, name, ...)`` does ``getattr(self.rpr, name)``; a target's
    ``_c(self, name, *args)`` forwards ``name`` to ``conn.call``: both are dispatchers.  Found to a
    fixed point over all files, so a renamed or new dispatcher is picked up without a list here.
    """
    found: set[str] = set()
    functions = [fn for tree in trees for fn in ast.walk(tree)
                 if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))]
    while True:
        before = len(found)
        for fn in functions:
            params = [a.arg for a in fn.args.posonlyargs + fn.args.args if a.arg not in ("self", "cls")]
            if not params or fn.name in found:
                continue
            for node in ast.walk(fn):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = _func_name(node.func)
                if name == "getattr" and len(node.args) >= 2 and _is_rpr_module(node.args[0]) \
                        and isinstance(node.args[1], ast.Name) and node.args[1].id in params:
                    found.add(fn.name)
                elif name in found and isinstance(node.args[0], ast.Name) and node.args[0].id in params:
                    found.add(fn.name)
        if len(found) == before:
            return found


def scan_python(path: Path, display: Path | None = None, dispatchers: Iterable[str] | None = None) -> Scan:
    """Every REAPER call in one Python file (see the module docstring).

    ``dispatchers``: names of by-name RPR dispatchers (default: found in this file alone).
    """
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text, filename=str(path))
    shown = display or path
    dispatch = set(dispatchers) if dispatchers is not None else find_dispatchers([tree])
    strings = _Strings(tree)
    scopes = _function_scopes(tree, strings)
    defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    parents: dict[int, ast.AST] = {}
    enclosing: dict[int, list[ast.AST]] = {}

    def walk(node: ast.AST, stack: list[ast.AST]) -> None:
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
            inner = stack + [child] if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) \
                else stack
            enclosing[id(child)] = inner
            walk(child, inner)
    walk(tree, [])

    def scope_of(node: ast.AST) -> dict[str, set[str]]:
        merged: dict[str, set[str]] = {}
        for fn in enclosing.get(id(node), []):
            merged.update(scopes.get(id(fn), {}))
        return merged

    def dynamic_by_design(node: ast.AST, name: str) -> bool:
        """A parameter (the dispatcher forwarding it) or a loop over a run-time list (``dir(rpr)``)."""
        for fn in enclosing.get(id(node), []):
            a = fn.args
            if name in {x.arg for x in a.args + a.kwonlyargs + a.posonlyargs}:
                return True
        for loop in ast.walk(tree):
            if isinstance(loop, (ast.For, ast.comprehension)) and isinstance(loop.target, ast.Name) \
                    and loop.target.id == name:
                return True
        return False

    def name_of(first: ast.expr, node: ast.Call) -> set[str] | None | bool:
        """The function names a by-name argument stands for; None if unresolvable; False if not a name at all."""
        values = strings.values(first, scope_of(node))
        if values is not None:
            return values
        if isinstance(first, ast.Name):
            if first.id in defined or dynamic_by_design(node, first.id):
                return False  # a local function (loop.call(build)), or forwarded/enumerated on purpose
            return None
        if isinstance(first, (ast.JoinedStr, ast.BinOp)) or \
                (isinstance(first, ast.Call) and _func_name(first.func) in ("str", "format")):
            return None  # a name built at run time: cannot be checked
        return False  # an attribute or expression that is not a string (loop.call(self.activate))

    def result_use(call: ast.Call) -> tuple[tuple[int, ...], int | None]:
        parent = parents.get(id(call))
        if isinstance(parent, ast.Subscript) and parent.value is call:
            index = parent.slice
            if isinstance(index, ast.Constant) and isinstance(index.value, int):
                return (index.value,), None
            if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub) \
                    and isinstance(index.operand, ast.Constant):
                return (-index.operand.value,), None
        if isinstance(parent, ast.Assign) and parent.value is call and len(parent.targets) == 1 \
                and isinstance(parent.targets[0], ast.Tuple):
            elts = parent.targets[0].elts
            star = [i for i, e in enumerate(elts) if isinstance(e, ast.Starred)]
            if not star:
                return (), len(elts)
            # ``ok, *rest = call(...)`` then ``rest[k]``: slot = position of the star + k
            s = star[0]
            rest = elts[s].value
            subs: list[int] = list(range(s))
            fn_nodes = enclosing.get(id(call), [])
            search = fn_nodes[-1] if fn_nodes else tree
            for node in ast.walk(search):
                if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                        and isinstance(rest, ast.Name) and node.value.id == rest.id \
                        and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
                    subs.append(s + node.slice.value)
            return tuple(subs), None
        return (), None

    out = Scan()
    called: set[int] = set()
    for node in ast.walk(tree):
        # simulator signatures: @rpr("int CountTracks(ReaProject* proj)")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and _func_name(deco.func) == "rpr" and deco.args:
                    sig = strings.values(deco.args[0])
                    if not sig or len(sig) != 1:
                        out.unresolved.append(Unresolved(shown, deco.lineno, ast.unparse(deco)[:120]))
                        continue
                    declared = parse_signature(next(iter(sig)))
                    out.calls.append(Call(shown, deco.lineno, declared.name, "python", declared.python_arity,
                                          declared=declared))
            continue
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called.add(id(func))
        skip = 0
        fname = _func_name(func)
        if fname in dispatch and node.args:
            names = name_of(node.args[0], node)
            skip = 1
        elif isinstance(func, ast.Attribute) and _is_rpr_module(func.value):
            names = {func.attr}
        elif fname in ("getattr", "hasattr") and len(node.args) >= 2 and _is_rpr_module(node.args[0]):
            names = name_of(node.args[1], node)
            if names:
                for name in sorted(n for n in names if not n.startswith("__")):
                    out.calls.append(Call(shown, node.lineno, name, "python", None))
                continue
        else:
            continue
        if names is False:
            continue
        if names is None:
            out.unresolved.append(Unresolved(shown, node.lineno, ast.unparse(node)[:120]))
            continue
        count, starred = _nargs(node, skip)
        subscripts, unpacked = result_use(node)
        for name in sorted(names):
            out.calls.append(Call(shown, node.lineno, name, "python", count, starred, subscripts, unpacked))
    # bare references RPR.X that are not called (passed around, kept in a table, ...)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_rpr_module(node.value) and id(node) not in called \
                and not node.attr.startswith("_") and isinstance(node.ctx, ast.Load) \
                and not isinstance(parents.get(id(node)), ast.Attribute):
            out.calls.append(Call(shown, node.lineno, node.attr, "python", None))
    return out


_SIGNATURE = re.compile(r"^\s*(.+?)\s*\b(\w+)\((.*)\)\s*$", re.S)


def parse_signature(text: str) -> ApiFunction:
    """``"int CountTracks(ReaProject* proj)"`` -> :class:`ApiFunction`."""
    match = _SIGNATURE.match(text)
    if match is None:
        raise ValueError(f"bad signature {text!r}")
    ret, name, params = match.groups()
    return ApiFunction(" ".join(ret.split()).replace(" *", "*"), name,
                       tuple(_param(p) for p in _split_params(params)))


# --- Lua -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # name, number, string, op
    text: str
    line: int


_LUA_OPS = ("...", "..", "==", "~=", "<=", ">=", "//", "::", "<<", ">>")


def lua_tokens(text: str) -> list[_Tok]:
    """Lua 5.4 tokens without comments; strings become one ``string`` token each."""
    out: list[_Tok] = []
    i, line, n = 0, 1, len(text)

    def long_bracket(at: int) -> tuple[int, int] | None:
        # ``[[``, ``[==[``: returns (level, index after the opening bracket)
        m = re.match(r"\[(=*)\[", text[at:])
        return (len(m.group(1)), at + m.end()) if m else None

    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif text.startswith("--", i):
            lb = long_bracket(i + 2)
            if lb:
                close = "]" + "=" * lb[0] + "]"
                end = text.find(close, lb[1])
                end = n if end < 0 else end + len(close)
            else:
                end = text.find("\n", i)
                end = n if end < 0 else end
            line += text.count("\n", i, end)
            i = end
        elif ch == "[" and long_bracket(i):
            level, start = long_bracket(i)
            close = "]" + "=" * level + "]"
            end = text.find(close, start)
            end = n if end < 0 else end + len(close)
            out.append(_Tok("string", text[i:end], line))
            line += text.count("\n", i, end)
            i = end
        elif ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            out.append(_Tok("string", text[i:j + 1], line))
            line += text.count("\n", i, j + 1)
            i = j + 1
        elif ch.isalpha() or ch == "_":
            m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i:])
            out.append(_Tok("name", m.group(), line))
            i += m.end()
        elif ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            m = re.match(r"0[xX][0-9a-fA-F.]+([pP][-+]?\d+)?|\d*\.?\d+([eE][-+]?\d+)?", text[i:])
            out.append(_Tok("number", m.group(), line))
            i += m.end()
        else:
            for op in _LUA_OPS:
                if text.startswith(op, i):
                    out.append(_Tok("op", op, line))
                    i += len(op)
                    break
            else:
                out.append(_Tok("op", ch, line))
                i += 1
    return out


_OPENERS = {"(": ")", "[": "]", "{": "}"}
_BLOCK_OPEN = {"function", "if", "do", "repeat"}
_BLOCK_CLOSE = {"end", "until"}


def _lua_args(tokens: list[_Tok], open_at: int) -> tuple[list[list[_Tok]], int]:
    """Arguments of the call whose ``(`` is ``tokens[open_at]``: (argument token lists, index after ``)``)."""
    args: list[list[_Tok]] = [[]]
    brackets: list[str] = []
    blocks = 0
    i = open_at + 1
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "name" and tok.text in _BLOCK_OPEN:
            blocks += 1
        elif tok.kind == "name" and tok.text in _BLOCK_CLOSE:
            blocks -= 1
        elif tok.kind == "op" and tok.text in _OPENERS:
            brackets.append(_OPENERS[tok.text])
        elif tok.kind == "op" and tok.text in (")", "]", "}"):
            if not brackets and tok.text == ")" and blocks == 0:
                return ([] if args == [[]] else args), i + 1
            if brackets:
                brackets.pop()
        elif tok.kind == "op" and tok.text == "," and not brackets and blocks == 0:
            args.append([])
            i += 1
            continue
        args[-1].append(tok)
        i += 1
    raise ValueError(f"unbalanced call at line {tokens[open_at].line}")


def _expands(arg: list[_Tok]) -> bool:
    """A last argument that can yield several values: ``...`` or a call expression."""
    if not arg:
        return False
    if len(arg) == 1 and arg[0].text == "...":
        return True
    if arg[-1].text != ")":
        return False
    # a call ends with ")" and its matching "(" follows a name, ")" or "]" (not a parenthesised expr)
    depth = 0
    for j in range(len(arg) - 1, -1, -1):
        if arg[j].text == ")":
            depth += 1
        elif arg[j].text == "(":
            depth -= 1
            if depth == 0:
                return j > 0 and (arg[j - 1].kind == "name" or arg[j - 1].text in (")", "]"))
    return False


def scan_lua(path: Path, display: Path | None = None) -> Scan:
    """Every ``reaper.X`` use in one Lua file (see the module docstring)."""
    tokens = lua_tokens(path.read_text(encoding="utf-8"))
    shown = display or path
    out = Scan()
    aliases: dict[str, str] = {}

    def record(name: str, line: int, call_open: int | None, args: list[list[_Tok]] | None = None) -> None:
        if call_open is not None:
            args, _ = _lua_args(tokens, call_open)
        if args is None:
            out.calls.append(Call(shown, line, name, "lua", None))
            return
        out.calls.append(Call(shown, line, name, "lua", len(args), bool(args) and _expands(args[-1])))

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.kind == "name" and tok.text == "reaper" and nxt is not None and nxt.text in (".", "["):
            if nxt.text == "." and i + 2 < len(tokens) and tokens[i + 2].kind == "name":
                name, after = tokens[i + 2].text, i + 3
            elif nxt.text == "[" and i + 3 < len(tokens) and tokens[i + 2].kind == "string" \
                    and tokens[i + 3].text == "]":
                name, after = tokens[i + 2].text[1:-1], i + 4
            else:
                i += 1
                continue
            follower = tokens[after] if after < len(tokens) else None
            before = tokens[i - 1] if i else None
            before2 = tokens[i - 2] if i > 1 else None
            if follower is not None and follower.text == "(":
                record(name, tok.line, after)
            elif follower is not None and (follower.kind == "string" or follower.text == "{"):
                record(name, tok.line, None, [[follower]])
            elif before is not None and before.text == "(" and before2 is not None and before2.text == "pcall":
                pcall_args, _ = _lua_args(tokens, i - 1)
                record(name, tok.line, None, pcall_args[1:])
            else:
                record(name, tok.line, None)
                # ``local f = reaper.X`` / ``f = reaper.X``: calls of f are calls of X
                if before is not None and before.text == "=" and before2 is not None and before2.kind == "name" \
                        and (follower is None or follower.text not in (".", ":", "[")):
                    aliases[before2.text] = name
            i = after
            continue
        if tok.kind == "name" and tok.text in aliases and nxt is not None and nxt.text == "(" \
                and (i == 0 or tokens[i - 1].text not in (".", ":", "function")) \
                and not (i > 0 and tokens[i - 1].text == "local"):
            record(aliases[tok.text], tok.line, i + 1)
        i += 1
    return out


_STUB = re.compile(r"^\s*function\s+(\w+)\.(\w+)\s*\(([^)]*)\)", re.M)


def scan_lua_stubs(path: Path, table: str, display: Path | None = None) -> Scan:
    """The functions a Lua stand-in for ``reaper`` defines as ``function <table>.X(a, b)``.

    Each must be a REAPER function (or Lua built-in) taking exactly that many arguments in Lua.
    """
    text = path.read_text(encoding="utf-8")
    out = Scan()
    for match in _STUB.finditer(text):
        if match.group(1) != table:
            continue
        params = [p.strip() for p in match.group(3).split(",") if p.strip()]
        line = text.count("\n", 0, match.start()) + 1
        out.calls.append(Call(display or path, line, match.group(2), "lua-stub", len(params), "..." in params))
    return out


def scan_paths(paths: Iterable[Path], root: Path) -> Scan:
    """Scan Python and Lua files; by-name dispatchers are found across all the Python files."""
    paths = sorted(paths)
    trees = [ast.parse(p.read_text(encoding="utf-8")) for p in paths if p.suffix == ".py"]
    dispatchers = find_dispatchers(trees)
    out = Scan()
    for path in paths:
        display = path.relative_to(root) if path.is_relative_to(root) else path
        if path.suffix == ".py":
            out.extend(scan_python(path, display, dispatchers))
        elif path.suffix == ".lua":
            out.extend(scan_lua(path, display))
    return out


# ------------------------------------------------------------------------------------------------
# The check
# ------------------------------------------------------------------------------------------------

def _norm_type(ctype: str) -> str:
    return " ".join(ctype.split()).replace(" *", "*")


def problems(calls: Iterable[Call], api: dict[str, ApiFunction]) -> Iterator[str]:
    """One line per call REAPER would not take, with file and line."""
    for call in calls:
        if call.language == "lua-stub":
            if call.name in LUA_BUILTINS:
                low, high = LUA_BUILTINS[call.name]
            elif call.name in api:
                low, high = api[call.name].lua_arity()
            else:
                yield f"{call.where()}: the stand-in defines {call.name}, which is not a REAPER API function"
                continue
            if call.nargs != high and not call.at_least:
                yield (f"{call.where()}: the stand-in's {call.name} takes {call.nargs} arguments; REAPER's Lua "
                       f"{call.name} takes {low}..{high}")
            continue
        if call.language == "lua" and call.name in LUA_BUILTINS:
            low, high = LUA_BUILTINS[call.name]
            if call.nargs is not None and not (low <= call.nargs <= high or call.at_least and call.nargs - 1 <= high):
                yield f"{call.where()}: reaper.{call.name} takes {low}..{high} arguments in Lua, given {call.nargs}"
            continue
        fn = api.get(call.name)
        if fn is None:
            yield f"{call.where()}: {call.name} is not a REAPER API function"
            continue
        if call.declared is not None:
            declared = call.declared
            want = [f"{_norm_type(p.ctype)} {p.name}" for p in fn.params]
            got = [f"{_norm_type(p.ctype)} {p.name}" for p in declared.params]
            if (declared.ret, got) != (fn.ret, want):
                yield (f"{call.where()}: the simulator declares {declared.ret} {fn.name}({', '.join(got)}) but "
                       f"REAPER has {fn.ret} {fn.name}({', '.join(want)})")
            continue
        if call.nargs is None:
            continue
        if call.language == "python":
            need = fn.python_arity
            if (call.at_least and call.nargs > need) or (not call.at_least and call.nargs != need):
                yield (f"{call.where()}: {fn.name} takes {need} arguments from Python, given {call.nargs} "
                       f"(reaper_python passes every C parameter)")
            for index in call.subscripts:
                if fn.tuple_slot(index) is None:
                    yield (f"{call.where()}: {fn.name}(...)[{index}] is not a return value or output slot "
                           f"(it returns {_tuple_text(fn)})")
            if call.unpacked is not None and call.unpacked != (fn.tuple_length if fn.returns_tuple else -1):
                yield (f"{call.where()}: unpacks {call.unpacked} values from {fn.name}, which returns "
                       f"{_tuple_text(fn)}")
        else:
            low, high = fn.lua_arity()
            given = call.nargs
            ok = low <= given <= high if not call.at_least else given - 1 <= high
            if not ok:
                yield (f"{call.where()}: reaper.{fn.name} takes {low}..{high} arguments in Lua, given {given} "
                       f"({', '.join(p.name for p in fn.lua_inputs()) or 'none'})")


def _tuple_text(fn: ApiFunction) -> str:
    if not fn.returns_tuple:
        return "a single value"
    slots = ([] if fn.ret == "void" else ["retval"]) + [p.name for p in fn.params]
    return "(" + ", ".join(slots) + ")"
