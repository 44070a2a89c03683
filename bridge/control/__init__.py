"""Inbound OSC from control surfaces: the ``/mixbridge/...`` address space (``docs/osc.md``).

:mod:`.addresses` is the one table of addresses, :mod:`.osc` a strict codec, :mod:`.controller`
the review session a surface drives, :mod:`.server` the UDP server.  Nothing here imports reapy;
the target is handed in (:func:`bridge.daw.base.make_target`).
"""
