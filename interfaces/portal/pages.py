"""Rendering the portal's pages (``templates/portal/*.html.j2``) with what every page needs.

:func:`page` gives each page the controller's name and a CSRF token (setting its cookie), in the
person's language (:func:`language`: English, German or French), and the security headers come
from :class:`SecurityHeaders`. Pages use no JavaScript.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dsar.app import App
from dsar.locale import LANGUAGES, NAMES, environment, negotiate
from interfaces.portal.guards import CSRF_FIELD, HONEYPOT_FIELD, csrf_token, set_csrf
from interfaces.portal.places import options

LANG_COOKIE = "lang"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def language(request: Request) -> str:
    """The page's language: ``?lang=`` (the switcher's links), else the ``lang`` cookie they
    set, else the browser's Accept-Language; English when none of these names one of ours."""
    chosen = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return negotiate(request.headers.get("accept-language"))


def page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """The page ``portal/<template>.html.j2`` in the person's language, with a CSRF token for
    its forms and the language switcher's links."""
    app: App = request.app.state.dsar
    token = csrf_token(request)
    lang = language(request)
    switch = [(code, NAMES[code], f"{request.url.path}?lang={code}") for code in LANGUAGES]
    body = environment(lang).get_template(f"portal/{template}.html.j2").render(
        controller=request.app.state.controller, csrf_field=CSRF_FIELD, csrf=token,
        honeypot=HONEYPOT_FIELD, public_url=app.settings.public_url,
        privacy_notice_url=app.settings.privacy_notice_url,
        controller_contact=app.settings.controller_contact, languages=switch,
        place_options=options(lang), **values)
    response = HTMLResponse(body, status_code=status,
                            headers={"Content-Language": lang, "Vary": "Accept-Language, Cookie"})
    secure = app.settings.public_url.startswith("https://")
    set_csrf(response, token, secure=secure)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True,
                            secure=secure, samesite="lax")
    return response


def problem(request: Request, status: int, title: str, text: str, fix: str = "",
            headers: dict[str, str] | None = None) -> HTMLResponse:
    response = page(request, "problem", status, title=title, text=text, fix=fix)
    response.headers.update(headers or {})
    return response


class SecurityHeaders:
    """ASGI middleware: :data:`HEADERS` on every response that does not set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()
                         if k.lower().encode() not in have]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, with_headers)
