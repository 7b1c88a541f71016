"""The console's application factory: settings, the console, logins, security headers."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from flask import Flask
from werkzeug.wrappers import Response

from moviepkg.logs import setup_logging

from . import actions, auth, insight_views, views
from .config import Settings, load_settings
from .console import Console

log = logging.getLogger("stopmo.ops")
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


def _secret_key(settings: Settings, testing: bool) -> str:
    if settings.secret_key_file is not None:
        return settings.secret_key_file.read_text(encoding="utf-8").strip()
    if not testing:
        log.warning("web.secret_key_file is not set: a restart logs every operator out")
    return secrets.token_hex(32)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the console; settings from /etc/stopmo/ops.toml and the environment.

    test_config may hold OPS_CONSOLE (a Console, not started) or OPS_SETTINGS; without
    OPS_CONSOLE the app builds a console and starts it (its subscriber and alert engine).
    """
    app = Flask(__name__)
    app.config.update(test_config or {})
    testing = bool(app.config.get("TESTING"))
    if not testing:
        setup_logging("ops")
    ops: Console | None = app.config.get("OPS_CONSOLE")
    if ops is None:
        ops = Console(app.config.get("OPS_SETTINGS") or load_settings())
        ops.start()
    settings = ops.settings
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(settings, testing)
    app.config.setdefault("USERS_FILE", settings.users_file)
    app.config.update(
        SESSION_COOKIE_NAME="stopmo_ops", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12), MAX_CONTENT_LENGTH=64 * 1024)
    app.extensions["stopmo.console"] = ops
    # Visible in imported macros too: show a poster only where the movies are on this box.
    app.jinja_env.globals["posters_dir_set"] = settings.posters_dir is not None

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        return response

    auth.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(actions.bp)
    app.register_blueprint(insight_views.bp)
    return app
