"""The web dashboard served by flow-state: upload tiles, a live list of flows, a page per flow.

``router`` carries the page, its event stream and its forwarding endpoints, and a lifespan that
runs the status-topic reader (``hub``) for as long as the HTTP app runs. See docs/dashboard.md.
"""

from .api import router

__all__ = ["router"]
