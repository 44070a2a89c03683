"""MixBridge: analyse REAPER stem bounces and write reviewable mix suggestions back into REAPER.

Importing this package never contacts REAPER; only :mod:`bridge.daw` does, and only when asked.
"""
__version__ = "0.1.0"
