"""The site's languages: English, Hebrew and Arabic, and which one a visitor reads.

In turn: the switch in the header (`?lang=he`, then remembered in the `lang` cookie for
a year), that cookie, the browser's Accept-Language, the festival's STOPMO_LANGUAGE,
English. The words are gettext catalogs in `translations/` (docs/website.md, "Languages");
dates and numbers follow the language, in the festival's time zone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from flask import Flask, Request, request
from flask_babel import Babel, get_locale
from werkzeug.wrappers import Response

from moviepkg.settings import choice

LANGUAGES = ("en", "he", "ar")
NAMES = {"en": "English", "he": "עברית", "ar": "العربية"}  # each in its own words
# Dates and numbers as the festival's title cards write them: `1 May 2026` in English.
LOCALES = {"en": "en_GB", "he": "he", "ar": "ar"}
SOURCE_LOCALE = LOCALES["en"]  # the msgids' language, and the API's
DEFAULT_LANGUAGE = "en"
LANGUAGE_ENV = "STOPMO_LANGUAGE"  # the same name as the processor's and the kiosk's
COOKIE = "lang"
COOKIE_SECONDS = 365 * 24 * 3600
PARAMETER = "lang"
# Older Android and Java phones still say `iw` for Hebrew.
_ACCEPTED = {**{code: code for code in LANGUAGES}, "iw": "he"}

check_language = choice(*LANGUAGES)


def known(value: str | None) -> str | None:
    """value if it is one of the site's languages, else None."""
    return value if value in LANGUAGES else None


def chosen(req: Request, default: str) -> str:
    """The language of this request: the switch, the cookie, the browser, or default."""
    wanted = known(req.args.get(PARAMETER)) or known(req.cookies.get(COOKIE))
    if wanted:
        return wanted
    best = req.accept_languages.best_match(list(_ACCEPTED))
    return _ACCEPTED[best] if best else default


def language() -> str:
    """The language the current page is in (`en`, `he`, `ar`)."""
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LANGUAGE


def direction() -> str:
    """`rtl` for a language written right to left, else `ltr`."""
    locale = get_locale()
    return "rtl" if locale is not None and locale.character_order == "right-to-left" else "ltr"


def switch_url(code: str) -> str:
    """This page (its path and query) in language code."""
    path = "/" + request.path.lstrip("/")  # never `//host`: a link to another site
    query = [(key, value) for key, value in request.args.items(multi=True) if key != PARAMETER]
    return f"{quote(path)}?{urlencode([*query, (PARAMETER, code)])}"


def switch() -> list[dict[str, Any]]:
    """The header's language links: each language's own name, and where it leads."""
    now = language()
    return [{"code": code, "name": NAMES[code], "url": switch_url(code), "current": code == now}
            for code in LANGUAGES]


def remember(response: Response) -> Response:
    """Keep the switch's choice in a cookie; say that pages vary by language."""
    asked = known(request.args.get(PARAMETER))
    if asked and asked != request.cookies.get(COOKIE):
        response.set_cookie(COOKIE, asked, max_age=COOKIE_SECONDS, samesite="Lax",
                            secure=request.is_secure)
    if response.mimetype == "text/html":
        response.vary.update(("Accept-Language", "Cookie"))  # shared caches keep each apart
        response.headers["Content-Language"] = language()
    return response


def setup_languages(app: Flask) -> None:
    """Give app its catalogs, the visitor's language and the festival's time zone."""
    default = app.config["LANGUAGE"]
    app.config["BABEL_DEFAULT_LOCALE"] = LOCALES[default]
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["TIMEZONE"]
    # `{% trans %}` paragraphs are extracted and looked up with their whitespace folded
    # (website/babel.cfg says `trimmed = true` too).
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    Babel(app, locale_selector=lambda: LOCALES[chosen(request, default)])
    app.after_request(remember)

    @app.context_processor
    def page_language() -> dict[str, Any]:
        """Every page knows its language, its direction and the switch."""
        return {"language": language(), "direction": direction(), "languages": switch()}
