"""Logins, sessions and CSRF: no page without a session, no form without its token."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from moviepkg.environment import Environment
from ops.app import create_app
from ops.cli import main
from ops.console import Console
from tests.ops.conftest import PASSWORD, form_token, log_in


def _routes(app: Flask) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("auth.login", "static"):
            continue
        path = rule.rule.replace("<name>", "st-1")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def test_every_route_redirects_to_login_without_a_session(app: Flask) -> None:
    routes = _routes(app)
    assert {("GET", "/"), ("GET", "/devices/st-1"), ("POST", "/devices/st-1/mute"),
            ("GET", "/live/overview"), ("POST", "/logout")} <= set(routes)
    client = app.test_client()
    token = form_token(client.get("/login").get_data(as_text=True))
    for method, path in routes:
        response = client.open(path, method=method, data={"csrf_token": token})
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"].startswith("/login"), (method, path)


def test_static_files_and_the_login_page_need_no_session(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/static/ops.css").status_code == 200
    page = client.get("/login")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"


def test_wrong_password_is_refused(app: Flask) -> None:
    client = app.test_client()
    token = form_token(client.get("/login").get_data(as_text=True))
    for user, password in (("ana", "wrong password"), ("nobody", PASSWORD)):
        response = client.post("/login", data={"user": user, "password": password,
                                               "csrf_token": token})
        assert response.status_code == 401
        assert "Wrong name or password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_then_every_page_and_back_to_next(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/devices/st-1")
    assert response.headers["Location"] == "/login?next=/devices/st-1"
    token = form_token(client.get(response.headers["Location"]).get_data(as_text=True))
    response = client.post("/login?next=/devices/st-1",
                           data={"user": "ana", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/devices/st-1"
    assert client.get("/").status_code == 200
    response = client.post("/login?next=//evil.example/",
                           data={"user": "ana", "password": PASSWORD,
                                 "csrf_token": form_token(client.get("/").get_data(as_text=True))})
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("path", ["/login", "/logout", "/devices/st-1/mute",
                                  "/devices/st-1/unmute"])
def test_a_form_without_its_csrf_token_is_refused(app: Flask, path: str) -> None:
    client = app.test_client()
    token = log_in(client)
    for data in ({"minutes": "60", "user": "ana", "password": PASSWORD},
                 {"minutes": "60", "user": "ana", "password": PASSWORD, "csrf_token": "x"}):
        response = client.post(path, data=data)
        assert response.status_code == 400, path
    assert client.get("/").status_code == 200  # still logged in: nothing was done
    assert token


def test_the_mute_form_works_with_its_token(client: FlaskClient, console: Console) -> None:
    token = form_token(client.get("/devices/st-1").get_data(as_text=True))
    response = client.post("/devices/st-1/mute", data={"minutes": "60", "csrf_token": token})
    assert response.status_code == 302
    assert "st-1" in console.db.mutes(console.clock())
    client.post("/devices/st-1/unmute", data={"csrf_token": token})
    assert "st-1" not in console.db.mutes(console.clock())


def test_the_session_cookie_is_httponly_samesite_and_secure_when_asked(
        console: Console) -> None:
    from dataclasses import replace

    for secure in (False, True):
        console.settings = replace(console.settings, secure_cookies=secure)
        app = create_app({"TESTING": True, "OPS_CONSOLE": console, "SECRET_KEY": "k"})
        client = app.test_client()
        client.get("/login")
        cookie = client.get_cookie("stopmo_ops")
        assert cookie is not None
        assert cookie.http_only and cookie.same_site == "Lax"
        assert cookie.secure is secure


def test_logout_and_a_removed_operator_lose_the_session(app: Flask, users_file: Path) -> None:
    client = app.test_client()
    token = log_in(client)
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/").status_code == 302
    log_in(client)
    users_file.write_text("")  # Ansible removed ana
    assert client.get("/").status_code == 302


def test_passwd_writes_a_hash_that_logs_in(app: Flask, users_file: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(io.BytesIO(b"another long password\n"), out, err, {})
    status = main(["passwd", "bo", "--file", str(users_file)], env)
    assert status == 0, err.getvalue()
    text = users_file.read_text()
    assert text.count("\n") == 2 and "bo:scrypt:" in text and "another" not in text
    log_in(app.test_client(), "bo", "another long password")
    short = Environment(io.BytesIO(b"short\n"), out, err, {})
    assert main(["passwd", "bo", "--file", str(users_file)], short) == 2
