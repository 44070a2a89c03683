"""The local review page (``mixbridge watch --review-page``, ``mixbridge review``): docs/review.md.

:mod:`.state` is what the page shows and does (the session core and the control surface's review
state, as JSON), :mod:`.audio` the offline renders to hear a plan state, :mod:`.server` the HTTP
server (standard library) and its security rules; ``static/`` holds the page (HTML, CSS, JS; no
build step, nothing fetched from elsewhere).
"""
