"""The website's application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the website; settings come from STOPMO_* environment variables or test_config."""
    app = Flask(__name__)
    app.config.from_mapping(SECRET_KEY="dev")
    app.config.from_prefixed_env("STOPMO")
    if test_config:
        app.config.update(test_config)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
