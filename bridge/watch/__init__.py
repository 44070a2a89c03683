"""The watch loop: a render folder in, a pass per bounce out (``mixbridge watch``).

Modules, in the order a bounce travels through them:

- :mod:`.filters`: which paths matter (stems and the bounce manifest; not REAPER's side files);
- :mod:`.observer`: watchdog events → a queue (the only module importing watchdog);
- :mod:`.settle`: when a file is complete (stable size, consistent header, readable);
- :mod:`.bounce`: which files make a bounce and which REAPER track each belongs to;
- :mod:`.state`: ``.mixbridge/`` (journal, last pass, pass folders) and restart recovery;
- :mod:`.watcher`: the worker that ties them together and hands each bounce to
  :class:`bridge.session.Session`, which runs the pass (the loop every command shares).

Importing this package does not import watchdog (the observer loads it when the watcher starts).
"""
from .watcher import Watcher

__all__ = ["Watcher"]
