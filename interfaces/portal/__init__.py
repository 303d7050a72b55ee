"""The data subjects' portal: a Starlette application served by uvicorn (``dsar serve``).

``make_portal(app)`` builds it (:mod:`interfaces.portal.app`); the request form, verification by
emailed link or code, the status page and bundle downloads with a landing page.
"""

from interfaces.portal.app import make_portal

__all__ = ["make_portal"]
