"""The watch loop: a render folder in, a pass per bounce out (``mixbridge watch``).

Modules, in the order a bounce travels through them:

- :mod:`.filters`: which paths matter (stems and the bounce manifest; not REAPER's side files);
- :mod:`.observer`: watchdog events → a queue (the only module importing watchdog);
- :mod:`.settle`: when a file is complete (stable size, consistent header, readable);
- :mod:`.bounce`: which files make a bounce and which REAPER track each belongs to;
- :mod:`.passes`: analyse → plan → notes and files for one pass;
- :mod:`.state`: ``.mixbridge/`` (journal, last pass, pass folders) and restart recovery;
- :mod:`.watcher`: the worker that ties them together; :mod:`.console`: what the terminal shows.

Importing this package does not import watchdog (the observer loads it when the watcher starts).
"""
from .console import Console
from .watcher import Watcher, WatchSettings

__all__ = ["Console", "Watcher", "WatchSettings"]
