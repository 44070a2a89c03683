"""The simulator's web interface reads commands as REAPER's ``csurf_www.cpp`` does.

``ProcessCommand`` copies each ``;``-separated command into ``char want[1024]`` before decoding it,
``GET/EXTSTATE`` decodes neither section nor key, ``SET/EXTSTATE`` decodes each part with WDL's
``url_decode`` (``+`` is a space), the request file ends at ``?``, and a user:password makes every
request without it a ``401``.  Real HTTP on 127.0.0.1, a stock urllib client.
"""
from __future__ import annotations

import base64
import urllib.error
import urllib.request

import pytest

from tests.reaper_sim.fixtures import (DEFAULT_PROJECT, expect_result, reaper_sim,  # noqa: F401
                                       run_reapy_client, running_sim, sim_project)

PREFIX = "SET/EXTSTATE/mixbridge/reply/"


def _get(sim, command: str, headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{sim.web_port}/_/{command}", headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return reply.read().decode()


def _ext(sim, section: str, key: str) -> str | None:
    return next((e["value"] for e in sim.control.dump()["ext_state"]
                 if (e["section"], e["key"]) == (section, key)), None)


def test_each_command_is_cut_to_1023_bytes_before_it_is_decoded(reaper_sim):
    _get(reaper_sim, PREFIX + "x" * 2000)
    assert _ext(reaper_sim, "mixbridge", "reply") == "x" * (1023 - len(PREFIX))
    # each command of a ;-list on its own; and the cut falls in the encoded text: "%41" is 3 bytes
    _get(reaper_sim, "SET/EXTSTATE/mixbridge/a/" + "%41" * 400 + ";SET/EXTSTATE/mixbridge/b/short")
    kept = (1023 - len("SET/EXTSTATE/mixbridge/a/")) // 3
    assert _ext(reaper_sim, "mixbridge", "a") == "A" * kept + "%4"[:(1023 - len("SET/EXTSTATE/mixbridge/a/")) % 3]
    assert _ext(reaper_sim, "mixbridge", "b") == "short"


def test_set_decodes_plus_as_space_get_decodes_nothing_and_a_query_string_is_dropped(reaper_sim):
    _get(reaper_sim, "SET/EXTSTATE/mixbridge/spaced%20key/1+2%2B3")
    assert _ext(reaper_sim, "mixbridge", "spaced key") == "1 2+3"
    # the key cannot be read back: GET looks up the literal "spaced%20key"
    assert _get(reaper_sim, "GET/EXTSTATE/mixbridge/spaced%20key") == "EXTSTATE\tmixbridge\tspaced%20key\t\n"
    _get(reaper_sim, "SET/EXTSTATE/mixbridge/q/what?now=1")
    assert _ext(reaper_sim, "mixbridge", "q") == "what"


def test_a_long_value_comes_back_whole_the_reply_is_not_cut(reaper_sim):
    # Values reach ExtState through the API too (a Lua script's SetExtState); GET's value is appended
    # without a limit, only the "EXTSTATE\tsection\tkey\t" head is cut (at 512 chars).
    expect_result(run_reapy_client(reaper_sim, "RPR.SetExtState('mixbridge', 'big', 'y' * 5000, False)"))
    assert _get(reaper_sim, "GET/EXTSTATE/mixbridge/big") == "EXTSTATE\tmixbridge\tbig\t" + "y" * 5000 + "\n"
    long_key = "k" * 600
    assert _get(reaper_sim, f"GET/EXTSTATE/mixbridge/{long_key}") == ("EXTSTATE\tmixbridge\t" + long_key)[:512] + "\n"


def test_a_password_protected_web_interface_answers_401(tmp_path):
    with running_sim(DEFAULT_PROJECT, tmp_path / "sim", extra_args=("--web-password", "mix:s3cret")) as sim:
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(sim, "GET/EXTSTATE/reapy/server_port")
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"] == 'Basic realm="reaper_www"'
        wrong = {"Authorization": "Basic " + base64.b64encode(b"mix:nope").decode()}
        with pytest.raises(urllib.error.HTTPError):
            _get(sim, "GET/EXTSTATE/reapy/server_port", wrong)
        right = {"Authorization": "Basic " + base64.b64encode(b"mix:s3cret").decode()}
        assert _get(sim, "GET/EXTSTATE/reapy/server_port", right) == f"EXTSTATE\treapy\tserver_port\t{sim.server_port}\n"
        # reapy 0.10's bootstrap sends no credentials: it takes the 401 for "REAPER is not there"
        outcome = run_reapy_client(sim, "result['connected'] = True")
        assert outcome.returncode != 0 and outcome.result is None
        assert "Can't reach distant API" in outcome.stderr
        assert sim.control.reapy_state()["server_port"] == str(sim.server_port)  # REAPER is right there
