"""Operators' logins: a users file of password hashes, a session, a CSRF token per form."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

log = logging.getLogger("stopmo.ops.auth")
bp = Blueprint("auth", __name__)
USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
PUBLIC_ENDPOINTS = {"auth.login", "static"}
# Checked when the user is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(8))
_cache: dict[Path, tuple[float, dict[str, str]]] = {}


def read_users(path: Path) -> dict[str, str]:
    """`user:hash` lines (Ansible writes them; `stopmo-ops passwd` too); re-read on change."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return {}
    cached = _cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    users: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, hashed = line.strip().partition(":")
        if sep and USER_RE.fullmatch(name) and not name.startswith("#"):
            users[name] = hashed
    _cache[path] = (mtime, users)
    return users


def check_login(path: Path, user: str, password: str) -> bool:
    """Whether user exists and password matches its hash."""
    hashed = read_users(path).get(user)
    ok = check_password_hash(hashed or _DUMMY_HASH, password)
    return ok and hashed is not None


def csrf_token() -> str:
    """The session's CSRF token (made on first use); every form sends it back."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return url_for("pages.overview_page")


def init_app(app: Flask) -> None:
    """Guard every route: a session for all but the login page and static files, CSRF."""
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def guard() -> Response | None:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            sent = request.form.get("csrf_token", "")
            token = session.get("csrf")
            if not isinstance(token, str) or not hmac.compare_digest(sent, token):
                abort(400, "This form has expired or did not come from the console: "
                           "reload the page and try again.")
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        user = session.get("user")
        if not isinstance(user, str) or user not in read_users(app.config["USERS_FILE"]):
            session.pop("user", None)
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return None

    app.register_blueprint(bp)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """Show the login form; check a name and password."""
    if request.method == "POST":
        user = request.form.get("user", "").strip()
        password = request.form.get("password", "")
        if USER_RE.fullmatch(user) and check_login(current_app.config["USERS_FILE"], user,
                                                   password):
            session.clear()  # a new session for a new login: no fixation
            session["user"] = user
            session.permanent = True
            csrf_token()
            log.info("operator logged in", extra={"user": user, "from": request.remote_addr})
            return redirect(_safe_next(request.args.get("next")))
        log.warning("failed login", extra={"user": user[:64], "from": request.remote_addr})
        return render_template("login.html", failed=True), 401
    return render_template("login.html", failed=False)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Forget the session."""
    session.clear()
    return redirect(url_for("auth.login"))
