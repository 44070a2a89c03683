"""reaper_sim: a headless REAPER that stock reapy clients connect to.

Run it as its own process::

    python -m tests.reaper_sim --project FILE.json [--web-port P] [--state-out FILE]
                               [--server-port P] [--hz 30] [--verbose]

Once every socket listens it prints exactly one line on stdout and flushes::

    READY web_port=41235 server_port=41237 control_port=41239 pid=12345

Every socket binds 127.0.0.1 only; ports default to free ones. It runs until
SIGTERM/SIGINT or the control command ``shutdown``, then writes ``--state-out``.

Inside, the process pretends to be REAPER's embedded Python (``server.py``): a
fake ``reaper_python`` module whose ``RPR_*`` functions act on an in-memory
project (``api.py`` over ``project.py``), ``__main__.obj``/``RPR_defer``/
``RPR_atexit``, reapy imported in its inside-REAPER mode, and reapy's own
``Server`` and ``activate_reapy_server.run_main_loop`` driving the distant API,
behind a minimal web interface answering ``/_/GET/EXTSTATE/reapy/server_port``
with ``EXTSTATE\\treapy\\tserver_port\\t<port>\\n`` as REAPER does.

Client-side recipe (a separate process, the one playing the bridge)
-------------------------------------------------------------------
reapy connects at import time to ``localhost:2307``, which cannot be changed
before the first import. In a fresh process::

    from tests.reaper_sim.client import connect_reapy
    reapy = connect_reapy(web_port)      # must run before anything imports reapy
    RPR = reapy.reascript_api

``connect_reapy`` imports reapy with ``urllib.request.urlopen`` temporarily
rewriting ``http://localhost:2307/`` to ``http://127.0.0.1:<web_port>/``, then
sets ``reapy.config.WEB_INTERFACE_PORT = web_port`` so ``reapy.reconnect()``
works later. Without the helper, the equivalent is::

    import reapy                      # warns DisabledDistAPIWarning if 2307 is free
    reapy.config.WEB_INTERFACE_PORT = web_port
    reapy.reconnect()
    # reapy.FX.functions was computed from the empty API at import: rebuild it
    tests.reaper_sim.client.rebuild_fx_functions(reapy)

(only safe when nothing else listens on 2307). reapy's client has no
timeouts; a test that may meet a stall runs the client in a subprocess with a
deadline (``fixtures.run_reapy_client``) or uses ``client.call_with_deadline``.
The pytest process itself *can* be a client (``connect_reapy`` works there), but
it can hold only one reapy connection and would hang on a stall, so the tests
use subprocesses.

Project file (``--project FILE.json``)
--------------------------------------
All keys are optional; unknown keys are an error (typos must not become
defaults). ``--state-out`` and the ``dump`` control command write a superset of
this format that loads back. ::

    {
      "name": "Song.rpp",                  # GetProjectName ("" = unsaved)
      "path": "/music/Song.rpp",           # EnumProjects file name
      "master": {"vol": 1.0, "pan": 0.0, "fx": [...]},
      "tracks": [
        {"name": "Kick",
         "guid": "{01234567-89AB-CDEF-0123-456789ABCDEF}",   # default: random
         "vol": 1.0,            # D_VOL, linear gain (1 = 0 dB)
         "pan": 0.0, "width": 1.0, "phase": false, "mute": false, "solo": 0,
         "selected": false, "fx_enabled": true,
         "ext": {"mixbridge": "ai"},                       # P_EXT:<key> values
         "source": "/abs/Kick.wav",   # audio the render action renders this track from (render.py)
         "fx": [{"name": "VST: ReaEQ (Cockos)",            # or "VST: ReaComp (Cockos)"
                 "renamed": "AI EQ", "enabled": true,
                 "params": {"Freq-Band 2": {"normalized": 0.476},
                            "15": {"raw": 1.0}},           # by name or index
                 "config": {"BANDTYPE1": "8"},             # named config values
                 "envelopes": [{"param": "Gain-Band 2", "points": [...]}]}],
         "envelopes": [{"name": "Volume",                  # or "chunk": "<VOLENV2"
                        "visible": true, "scaling_mode": 1,
                        "points": [{"time": 0.0, "value": 716.0, "shape": 0,
                                    "tension": 0.0, "selected": false}]}]}
      ],
      "markers": [{"pos": 12.0, "name": "Drop", "number": 1, "color": 0}],
      "regions": [{"start": 0.0, "end": 30.0, "name": "Verse", "number": 1}],
      "proj_ext": {"extname": {"key": "value"}}
    }

Control channel
---------------
Line-delimited JSON on ``control_port`` (see ``control.py``; ``ControlClient``):
state dump, call statistics, manual edits "by hand" (track values, FX
parameters), and armed faults: stall (N seconds or until release), drop the
reapy connections, die (``os._exit``) now, at the N-th RPR call or at a named
function.

What is modelled and what is refused
------------------------------------
``api.modelled_function_names()`` lists the functions; the server publishes
exactly those (``reapy.reascript_api.__all__`` on the client). Anything else
raises ``UnmodelledCall`` naming it; a client sees a ``DistError`` carrying
that message (or an ``AttributeError`` for a stub it never received). See
``api.py`` for the ReaScript conventions reproduced, including the
uncomfortable ones (``EnumProjectMarkers*`` cannot return names to Python,
``GetTrackGUID`` returns a ``(GUID*)`` pointer, ``Undo_CanUndo2`` raises
``AttributeError`` when there is nothing to undo).

REAPER as its source shows it
-----------------------------
Where Cockos's published code says how REAPER behaves, the simulator follows it (docs/reaper-setup.md
and docs/reaper-osc.md list every rule with its evidence): the OSC surface's echo and cache rules
(``osc_surface.py``, from ``csurf_osc.cpp``), the web interface's 1023-byte commands, decoding and
``--web-password`` 401 (``server.WebInterface``, from ``csurf_www.cpp``), and reapy's server dying in
a HOLD the way it would inside REAPER, leaving a stale ``server_port`` and a socket nobody serves
(``server.ReapyHost``; ``--atexit-after-error`` for the other reading; ``reapy_state`` on the
control channel shows it).

Seams for later
---------------
The OSC surface is ``osc_surface.py``: ``--osc-port P
[--osc-feedback HOST:PORT] [--osc-pattern FILE]`` starts it as a thread posting
work through ``MainLoop.call`` onto the same ``Project``; the READY line then
ends with ``osc_port=N``. Rendering stems lives in
``render.py``: the RENDER_* project settings, actions 42230/41824 and the named
action ``_MIXBRIDGE_BOUNCE`` (MixBridge's bounce script: stems plus the bounce
manifest), runnable from a client, the web interface (``/_/_MIXBRIDGE_BOUNCE``)
and the control channel (``bounce``).
"""
