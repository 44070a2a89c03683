"""The review page's server on real loopback sockets, no browser: exposure, token, Host, Origin, methods,
sizes, traversal, byte ranges, the event stream, and actions reaching the review state through the
controller.  Requests are made with http.client so every header is ours to set (or leave out)."""
from __future__ import annotations

import copy
import http.client
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.control.controller import SessionController
from bridge.errors import SurfaceExposed
from bridge.session import Session
from bridge.settings import Settings
from bridge.web.server import MAX_BODY_BYTES, ReviewServer
from bridge.web.state import ReviewState
from bridge.web.audio import RenderCache
from tests.conftest import wait_until
from tests.test_review import PLAN

RATE = 48000


def write_stems(folder: Path, names=("Kick", "Vox", "Gtr", "Bass"), seconds=1.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for k, name in enumerate(names):
        t = np.arange(int(seconds * RATE)) / RATE
        tone = 0.2 * np.sin(2 * np.pi * (110.0 * (k + 1)) * t)
        data = np.stack([tone, tone], axis=1) + 0.02 * rng.standard_normal((len(t), 2))
        sf.write(folder / f"{name}.wav", data.astype(np.float32), RATE, subtype="PCM_24")
    return folder


@pytest.fixture
def page(tmp_path):
    stems = write_stems(tmp_path / "stems")
    session = Session(Settings(stems=stems, target="plan", review=True))
    controller = SessionController(session, copy.deepcopy(PLAN), {})
    session.reviewer = controller
    state = ReviewState(session, controller, RenderCache(tmp_path / "renders", stems))
    server = ReviewServer(state, port=0).start()
    yield server, controller
    server.stop()
    session.close()


def request(server: ReviewServer, method: str, path: str, *, headers: dict | None = None, body: bytes | None = None,
            host: str | None = None):
    """One request on a fresh connection; ``host=None`` sends the server's own Host header."""
    address, port = server.address
    conn = http.client.HTTPConnection(address, port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else f"{address}:{port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def base(server: ReviewServer) -> str:
    return f"/r/{server.token}/"


def own_origin(server: ReviewServer) -> str:
    host, port = server.address
    return f"http://{host}:{port}"


def post(server, path, payload, **headers):
    h = {"Origin": own_origin(server), "Content-Type": "application/json", **headers}
    return request(server, "POST", base(server) + path, headers=h, body=json.dumps(payload).encode())


# --- exposure ---------------------------------------------------------------------------------------------

def test_a_non_loopback_bind_is_refused_without_an_allow_list(page):
    server, _ = page
    for bind in ("0.0.0.0", "::", "192.168.1.20"):
        with pytest.raises(SurfaceExposed) as caught:
            ReviewServer(server.state, bind=bind, port=0)
        assert caught.value.code == "E_SURFACE_EXPOSED" and "--page-allow" in caught.value.message
    assert ReviewServer(server.state, bind="0.0.0.0", port=0, allow=["10.1.2.3"]).allow == {"10.1.2.3"}


def test_the_cli_refuses_a_non_loopback_page_without_allow(tmp_path):
    stems = write_stems(tmp_path / "stems")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    done = subprocess.run([sys.executable, "-m", "bridge", "review", str(plan), "--stems", str(stems), "--target",
                           "plan", "--no-analysis", "--page-bind", "0.0.0.0", "--page-port", "0"],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("mixbridge: E_SURFACE_EXPOSED: ") and "--page-allow" in done.stderr


def test_only_the_allowed_hosts_may_connect(tmp_path):
    """Bound to loopback but allowing only another host: this (loopback) client is dropped unanswered."""
    session = Session(Settings(stems=write_stems(tmp_path / "stems"), target="plan", review=True))
    state = ReviewState(session, SessionController(session, copy.deepcopy(PLAN), {}))
    with ReviewServer(state, port=0, allow=["10.9.9.9"]) as server:
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
            request(server, "GET", base(server))
        assert server.counters["not_allowed"] == 1


# --- the token and the Host -------------------------------------------------------------------------------

def test_requests_without_the_token_are_refused(page):
    server, _ = page
    for path in ("/", "/index.html", "/static/app.js", "/api/state", "/events", "/r/", "/r/x/",
                 f"/r/{server.token[:-1]}/", f"/r/{server.token}x/api/state", f"/R/{server.token}/",
                 f"/./r/{server.token}/", f"/%72/{server.token}/", f"/r/%{ord(server.token[0]):02X}{server.token[1:]}/"):
        status, _, body = request(server, "GET", path)
        assert status == 404, (path, status)
        assert server.token.encode() not in body
    status, headers, body = request(server, "GET", base(server))
    assert status == 200 and b"<title>MixBridge review</title>" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
    status, headers, _ = request(server, "GET", f"/r/{server.token}")
    assert status == 308 and headers["Location"] == base(server)
    assert server.counters["bad_token"] >= 11


def test_a_foreign_host_header_is_refused(page):
    """DNS rebinding: a page at evil.example resolved to 127.0.0.1 sends Host: evil.example."""
    server, _ = page
    port = server.address[1]
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", f"localhost.evil.example:{port}", ""):
        status, _, _ = request(server, "GET", base(server) + "api/state", host=host)
        assert status in (400, 421), (host, status)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert request(server, "GET", base(server) + "api/state", host=host)[0] == 200, host


# --- actions: POST, JSON, own origin ----------------------------------------------------------------------------

def test_actions_from_another_origin_are_refused_and_change_nothing(page):
    server, controller = page
    sid = "Kick/masking/1"
    payload = {"action": "accept", "plan": PLAN["id"], "id": sid}
    body = json.dumps(payload).encode()
    path = base(server) + "api/action"
    port = server.address[1]
    refused = [
        {"Content-Type": "application/json"},  # no Origin
        {"Origin": "http://evil.example", "Content-Type": "application/json"},
        {"Origin": f"http://127.0.0.1:{port + 1}", "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "application/json"},
        {"Origin": own_origin(server), "Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
        {"Origin": own_origin(server), "Content-Type": "text/plain"},  # a "simple" cross-site form post
        {"Origin": own_origin(server), "Content-Type": "application/x-www-form-urlencoded"},
    ]
    for headers in refused:
        status, _, _ = request(server, "POST", path, headers=headers, body=body)
        assert status in (403, 415), (headers, status)
    assert request(server, "GET", path + "?action=accept")[0] == 405, "GET never acts"
    for method in ("PUT", "DELETE", "OPTIONS"):
        assert request(server, method, path)[0] == 405
    assert controller.states()[sid] == "pending" and server.state.version >= 0
    assert server.counters["bad_origin"] == 5 and server.counters["bad_type"] == 2

    status, _, body = post(server, "api/action", payload)
    assert status == 202 and json.loads(body) == {"queued": 1}
    wait_until(lambda: controller.states()[sid] == "accepted", 10, "the accept to go through the controller")
    assert controller.status == f"accepted {sid} (4 writes)", "the surface's own status line"


def test_bad_bodies_are_refused(page):
    server, controller = page
    path = base(server) + "api/action"
    h = {"Origin": own_origin(server), "Content-Type": "application/json"}
    assert request(server, "POST", path, headers=h, body=b"x" * (MAX_BODY_BYTES + 1))[0] == 413
    assert request(server, "POST", path, headers=h)[0] == 411
    assert request(server, "POST", path, headers=h, body=b"{not json")[0] == 400
    assert request(server, "POST", path, headers=h, body=b"[1, 2]")[0] == 400
    for payload in ({"action": "rm -rf"}, {"action": "accept"}, {"action": "accept", "plan": PLAN["id"]},
                    {"action": "accept", "plan": PLAN["id"], "id": 3}, {"action": "amount", "plan": PLAN["id"], "value": 7},
                    {"action": "accept_track", "plan": PLAN["id"], "slot": True}):
        assert post(server, "api/action", payload)[0] == 400, payload
    assert controller.accepted() == ()


def test_an_action_on_a_plan_the_page_no_longer_shows_does_nothing(page):
    server, controller = page
    status, _, _ = post(server, "api/action", {"action": "accept", "plan": "an-old-plan", "id": "Kick/masking/1"})
    assert status == 202
    wait_until(lambda: "plan changed" in controller.status, 10, "the stale action to be refused")
    assert controller.accepted() == ()


# --- assets and audio: look-ups, no paths -------------------------------------------------------------------------

def rendered_key(server) -> str:
    status, _, body = post(server, "api/render", {"plan": PLAN["id"], "ids": ["Kick/too_loud/0"]})
    assert status == 200, body
    key = json.loads(body)["key"]
    wait_until(lambda: server.state.render_status(key)["status"] == "ready", 60, "the render")
    return key


def test_no_path_traversal_in_assets_or_audio(page, tmp_path):
    server, _ = page
    key = rendered_key(server)
    b = base(server)
    assert request(server, "GET", f"{b}audio/{key}/mix_after.wav")[0] == 200
    assert (tmp_path / "renders" / key / "render" / "render.json").is_file(), "a file that exists but is not served"
    for path in ("static/../server.py", "static/..%2fserver.py", "static/%2e%2e/server.py", "static/index.html",
                 "static/app.js/../../server.py", "static/app.js%00", "static/.htaccess", "static/",
                 f"audio/{key}/render.json", f"audio/{key}/../{key}/mix_after.wav", f"audio/{key}/..%2f..%2fentry.json",
                 f"audio/{key}/render/mix_after.wav", f"audio/{key}/stem-0.wav", "audio/../../etc/passwd",
                 f"audio/{key.upper()}/mix_after.wav", "audio/000000000000000000000000/mix_after.wav",
                 "notes/../../etc/passwd", "api/render/../../x", "..", "%2e%2e/"):
        status, _, body = request(server, "GET", b + path)
        assert status in (404, 405), (path, status)
        assert b"RIFF" not in body[:4] and b"import" not in body


def test_audio_has_its_type_and_byte_ranges(page, tmp_path):
    server, _ = page
    key = rendered_key(server)
    url = f"{base(server)}audio/{key}/mix_after.wav"
    whole = (tmp_path / "renders" / key / "render" / "mix_after.wav").read_bytes()
    status, headers, body = request(server, "GET", url)
    assert status == 200 and body == whole and headers["Content-Type"] == "audio/wav"
    assert headers["Accept-Ranges"] == "bytes" and int(headers["Content-Length"]) == len(whole)
    status, headers, body = request(server, "GET", url, headers={"Range": "bytes=100-199"})
    assert status == 206 and body == whole[100:200] and headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    status, headers, body = request(server, "GET", url, headers={"Range": "bytes=-64"})
    assert status == 206 and body == whole[-64:]
    status, _, body = request(server, "GET", url, headers={"Range": "bytes=44-"})
    assert status == 206 and body == whole[44:]
    status, headers, _ = request(server, "GET", url, headers={"Range": f"bytes={len(whole)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(whole)}"
    assert request(server, "GET", url, headers={"Range": "bytes=5-2"})[0] == 416
    assert request(server, "GET", url, headers={"Range": "chunks=1-2"})[0] == 416
    status, headers, body = request(server, "HEAD", url)
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(whole)


# --- live updates ------------------------------------------------------------------------------------------------

def read_event(stream) -> dict:
    lines = []
    while True:
        line = stream.readline()
        assert line, "the stream ended"
        line = line.decode().rstrip("\n")
        if line == "" and lines:
            data = [x[len("data: "):] for x in lines if x.startswith("data: ")]
            if data:
                return json.loads("".join(data))
            lines = []
        elif line and not line.startswith(":"):
            lines.append(line)


def test_the_event_stream_sends_a_snapshot_on_every_change(page):
    server, controller = page
    host, port = server.address
    sock = socket.create_connection((host, port), timeout=10)
    try:
        sock.sendall(f"GET {base(server)}events HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 200")
        headers = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            k, _, v = line.decode().partition(":")
            headers[k.lower()] = v.strip()
        assert headers["content-type"].startswith("text/event-stream")
        first = read_event(stream)
        assert [t["name"] for t in first["tracks"]] == ["Kick", "Vox", "Gtr", "Bass"] and first["pending"] == 5
        assert post(server, "api/action", {"action": "accept", "plan": PLAN["id"], "id": "Gtr/width/1"})[0] == 202
        while True:
            snap = read_event(stream)
            if snap["accepted"] == ["Gtr/width/1"] and snap["actions"]["done"] == 1:
                break
        gtr = next(t for t in snap["tracks"] if t["name"] == "Gtr")
        assert gtr["provenance"] == "ai" and [s["state"] for s in gtr["suggestions"]] == ["pending", "accepted"]
        assert gtr["suggestions"][1]["moves"] == ["width 50%"], "the notes' own words for the move"
    finally:
        sock.close()


# --- mixbridge review, as a user runs it ---------------------------------------------------------------------

def test_mixbridge_review_serves_a_plan_with_its_notes_until_sigterm(tmp_path):
    import signal

    from bridge.synth import default_session, write_session

    repo = Path(__file__).resolve().parents[1]
    stems = tmp_path / "stems"
    write_session(stems, [s for s in default_session() if s.name in ("Kick", "Bass_DI", "Keys")], duration_s=3.0)
    plan = tmp_path / "plan.json"
    subprocess.run([sys.executable, "-m", "bridge", "plan", str(stems), "--json", str(plan), "--jobs", "1"],
                   check=True, capture_output=True, timeout=120, cwd=repo)
    proc = subprocess.Popen([sys.executable, "-m", "bridge", "review", str(plan), "--stems", str(stems), "--target",
                             "plan", "--page-port", "0", "--jobs", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=repo)
    try:
        line = proc.stdout.readline()  # the first line is the address (nothing else is printed before it)
        assert line.startswith("mixbridge review: http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[2]
        host_port, _, path = url[len("http://"):].partition("/")
        host, port = host_port.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/" + path + "api/state")
        snap = json.loads(conn.getresponse().read())
        assert snap["notes"] and snap["can_replan"] and snap["pass"]["number"] == 1, "analysed: notes, amount"
        assert {t["name"] for t in snap["tracks"]} == {"Kick", "Bass_DI", "Keys"}
        conn.request("GET", "/" + path + "notes")
        notes = conn.getresponse().read().decode()
        assert "Mix notes" in notes and f'href="{url}"' in notes, "the notes link back to the page"
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "mixbridge review: stopped" in out
