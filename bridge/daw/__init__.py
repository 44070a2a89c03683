"""DAW targets: the only code that talks to REAPER (reapy over the distant API, and OSC).

Nothing here is imported by ``import bridge``; reapy is imported lazily, on first connect.
"""
