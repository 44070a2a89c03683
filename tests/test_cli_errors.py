"""What a user sees when something goes wrong, and while things run: one line with a code, the right
exit status (from the error's class), the subcommand's usage, progress, clean Ctrl-C.  Issue 12's list."""
from __future__ import annotations

import inspect
import io
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bridge.errors as errors_module
from bridge.cli import main
from bridge.console import Console
from bridge.errors import MESSAGES, BridgeError, ExitStatus
from bridge.synth import default_session, write_session
from bridge.watch import Watcher
from tests.conftest import wait_until, watch_settings

REPO = Path(__file__).resolve().parents[1]


def _run(args, capsys) -> tuple[int, str, str]:
    out = io.StringIO()
    code = main(args, out=out)
    captured = capsys.readouterr()
    return code, out.getvalue(), captured.err


@pytest.fixture(scope="module")
def stems(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stems")
    write_session(folder, default_session()[:3], duration_s=4.0)
    return folder


def test_every_error_class_has_one_code_and_an_exit_status():
    classes = [c for _, c in inspect.getmembers(errors_module, inspect.isclass)
               if issubclass(c, BridgeError)]
    codes = {}
    for cls in classes:
        if "code" in cls.__dict__:
            assert cls.code not in codes, f"{cls.code} on {cls.__name__} and {codes[cls.code]}"
            codes[cls.code] = cls.__name__
            assert cls.code in MESSAGES
        assert isinstance(cls.exit_status, ExitStatus)
    assert set(codes) == set(MESSAGES), "every code has exactly one class"
    assert errors_module.DawUnavailable("x").exit_status == ExitStatus.DAW_UNAVAILABLE
    assert errors_module.RolesError("x").exit_status == ExitStatus.USAGE
    assert errors_module.NoStems("x").exit_status == ExitStatus.NOTHING_USABLE


def test_str_of_every_error_is_its_message_with_or_without_detail():
    # OSError-derived classes (DawTimeout, DawUnavailable, PathNotFound ...) once printed as ''.
    classes = [c for _, c in inspect.getmembers(errors_module, inspect.isclass)
               if issubclass(c, BridgeError) and "code" in c.__dict__]
    for cls in classes:
        assert str(cls()) == MESSAGES[cls.code], cls.__name__
        assert str(cls("at 3 s")) == f"{MESSAGES[cls.code]}: at 3 s", cls.__name__
        assert cls("x").line() == f"{cls.code}: {MESSAGES[cls.code]}: x"


def test_a_malformed_mixbridge_toml_is_one_line_with_its_code(stems, tmp_path, capsys):
    folder = tmp_path / "s"
    folder.mkdir()
    for p in stems.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "mixbridge.toml").write_text("[roles\nKick = 'drums'\n")
    code, _, err = _run(["plan", str(folder), "--json", str(tmp_path / "p.json"), "--jobs", "1"], capsys)
    assert code == 2 and err.count("\n") == 1 and "E_ROLES" in err and "mixbridge.toml" in err and "line 1" in err
    assert "Traceback" not in err and not (tmp_path / "p.json").exists()


def test_apply_of_a_notes_file_says_it_is_not_a_plan(tmp_path, capsys):
    notes = tmp_path / "notes.html"
    notes.write_text("<!DOCTYPE html>\n<html><body>notes</body></html>\n")
    code, _, err = _run(["apply", str(notes)], capsys)
    assert code == 2 and "E_PLAN" in err and "HTML" in err and "Expecting value" not in err


def test_plan_on_a_missing_path_writes_no_plan(tmp_path, capsys):
    out = tmp_path / "plan.json"
    code, _, err = _run(["plan", str(tmp_path / "nowhere"), "--json", str(out)], capsys)
    assert code == 2 and "E_PATH_NOT_FOUND" in err and not out.exists()


def test_an_unquoted_path_with_a_space_gets_a_hint(stems, tmp_path, capsys):
    spaced = tmp_path / "my stems"
    spaced.mkdir()
    for p in stems.iterdir():
        (spaced / p.name).write_bytes(p.read_bytes())
    code, _, err = _run(["analyze", str(tmp_path / "my"), "stems", "--jobs", "1"], capsys)
    assert code == 2 and "E_PATH_NOT_FOUND" in err and "quotes" in err and "permissions" not in err


def test_a_misspelt_flag_shows_the_subcommands_usage(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bridge", "plan", str(tmp_path), "--json", "p.json",
                           "--amout", "0.5"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: mixbridge plan") and "--amout (did you mean --amount?)" in done.stderr


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plan_shows_progress_on_a_terminal(stems, tmp_path):
    out = _Tty()
    assert main(["plan", str(stems), "--json", str(tmp_path / "p.json"), "--jobs", "1"], out=out) == 0
    text = out.getvalue()
    assert "\r\x1b[Kanalysing 1/3" in text and "analysing 3/3" in text
    plain = io.StringIO()
    main(["plan", str(stems), "--json", str(tmp_path / "q.json"), "--jobs", "1"], out=plain)
    assert "analysing" not in plain.getvalue(), "no progress lines in a pipe: the table is the output"


def test_the_watcher_says_what_it_waits_for_and_names_failed_stems(tmp_path):
    renders = tmp_path / "renders"
    renders.mkdir()
    w = Watcher(watch_settings(renders, settle_s=0.3, poll_s=0.05, jobs=1, stop_timeout_s=15.0),
                console=Console(io.StringIO(), tty=False)).start()
    try:
        growing = renders / "Growing.wav"
        growing.write_bytes(b"RIFF\0\0\0\0WAVE")  # a render that has only begun
        assert w.wait_for(lambda: any("waiting for 1 file to finish writing" in x for x in w.console.lines), 30)
        growing.unlink()
        write_session(renders, default_session()[:2], duration_s=3.0)
        (renders / "Broken.wav").write_text("not audio " * 100)
        assert w.wait_for(lambda: w.passes and len(w.passes[-1].result.stems) == 3, 60)
    finally:
        w.stop(15.0)
    line = [x for x in w.console.lines if x.startswith("pass ")][-1]
    assert "1 failed (Broken: E_NOT_AUDIO)" in line, line


def _read_until(fd: int, needle: bytes, timeout_s: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout_s
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {needle!r} within {timeout_s} s: {seen[-500:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


@pytest.mark.parametrize("command", ["plan", "watch"])
def test_ctrl_c_during_analysis_exits_0_and_says_so(tmp_path, command):
    """Issue 12: Ctrl-C during analysis exited 1 with KeyboardInterrupt()."""
    folder = tmp_path / "stems"
    write_session(folder, default_session()[:6], duration_s=15.0)
    args = {"plan": ["plan", str(folder), "--json", str(tmp_path / "p.json"), "--jobs", "2"],
            "watch": ["watch", str(folder), "--jobs", "2", "--settle", "0.2"]}[command]
    master, slave = pty.openpty()  # a terminal, so the progress line shows when analysis is under way
    proc = subprocess.Popen([sys.executable, "-m", "bridge", *args], cwd=REPO, stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        _read_until(master, b"analysing 1/", 60)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        code = proc.wait(30)
        rest = b""
        try:
            while True:
                ready, _, _ = select.select([master], [], [], 0.5)
                if not ready:
                    break
                chunk = os.read(master, 4096)
                if not chunk:
                    break
                rest += chunk
        except OSError:
            pass
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        os.close(master)
    text = rest.decode("utf-8", "replace")
    assert code == 0, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    if command == "watch":
        assert "will re-run on the next start" in text, text
    else:
        assert "interrupted" in text and not (tmp_path / "p.json").exists()
    wait_until(lambda: not _orphans(proc.pid), 10, "the worker processes to exit")


def _orphans(pgid: int) -> list[int]:
    import psutil

    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(p.pid) == pgid:
                out.append(p.pid)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            pass
    return out
