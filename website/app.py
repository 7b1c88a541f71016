"""The website's application factory: settings, storage, cache, security headers."""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

import redis
from flask import Flask, Response
from redis.backoff import NoBackoff
from redis.retry import Retry

from moviepkg.logs import setup_logging
from moviepkg.settings import boolean, timezone
from moviepkg.times import DEFAULT_TIMEZONE, TIMEZONE_ENV

from .breaker import Breaker
from .catalog import Catalog
from .festival import Festival, festival_from_config
from .languages import DEFAULT_LANGUAGE, LANGUAGE_ENV, check_language, setup_languages
from .pagecache import PageCache
from .storage import Storage, open_storage

log = logging.getLogger("stopmo.website")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"{name}: expected a whole number, found {value!r}") from None


def _env_bool(name: str, default: bool) -> bool:
    """A true/false variable, or default when unset; ValueError naming it."""
    value = os.environ.get(name, "")
    try:
        return boolean(value) if value else default
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def settings_from_env() -> dict[str, Any]:
    """Read the website's settings from the environment (Heroku style)."""
    return {
        "STORAGE_URL": os.environ.get("STORAGE_URL", "file:///var/lib/stopmo/work/store"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        # Heroku Redis speaks TLS (rediss://) with a self-signed certificate: false there.
        "REDIS_TLS_VERIFY": _env_bool("REDIS_TLS_VERIFY", True),
        "SECRET_KEY": os.environ.get("SECRET_KEY", ""),
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL") or None,
        "PRESIGN_SECONDS": _env_int("PRESIGN_SECONDS", 900),
        "CACHE_SECONDS": _env_int("CACHE_SECONDS", 60),
        "PAGE_SIZE": _env_int("PAGE_SIZE", 24),
        "REDIS_BACKOFF_SECONDS": _env_int("REDIS_BACKOFF_SECONDS", 5),
        "HEALTH_TOKEN": os.environ.get("HEALTH_TOKEN", ""),
        "TIMEZONE": os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE,
        # For a browser that asks for none of the site's languages (website.languages).
        "LANGUAGE": os.environ.get(LANGUAGE_ENV) or DEFAULT_LANGUAGE,
        # The festival's look (checked in website.festival): shared names with the processor.
        "FESTIVAL_NAME": os.environ.get("STOPMO_FESTIVAL_NAME", ""),
        "FESTIVAL_LOGO_URL": os.environ.get("FESTIVAL_LOGO_URL", ""),
        "STATION_NAMES": os.environ.get("STATION_NAMES", ""),
        "HALL_NAMES": os.environ.get("HALL_NAMES", ""),
        "MOVIE_SIZE": os.environ.get("STOPMO_OUTPUT_SIZE", ""),
        "SITE_URL": os.environ.get("SITE_URL", ""),
        # Trusted proxies in front of the site (Heroku's router: 1); 0 trusts no
        # X-Forwarded-For (the owner actions' rate limits count per client address).
        "PROXY_HOPS": _env_int("PROXY_HOPS", 0),
    }


def _redis(url: str, verify: bool = True) -> redis.Redis | None:
    """The cache's client for url (None: the cache is off); verify: check a rediss:// server's
    certificate."""
    if url in ("", "none", "off"):
        return None  # the cache switched off: every request reads the store
    # Over TLS without a certificate to check (Heroku Redis): encrypted, not authenticated.
    tls = {} if verify or not url.startswith("rediss://") else {"ssl_cert_reqs": "none"}
    # Short timeouts: a Redis that hangs must not hold a visitor for long (and the
    # catalog's breaker then skips it). One immediate retry, on a connection error only,
    # replaces a pooled connection that a restarted Redis has closed; a timeout is not
    # retried, which would only double the wait.
    return redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.5,
                                health_check_interval=30,
                                retry=Retry(NoBackoff(), 1, (redis.ConnectionError,)),
                                **tls)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the website; settings from the environment, or test_config for tests."""
    app = Flask(__name__)
    app.config.update(settings_from_env())
    if test_config:
        app.config.update(test_config)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        if not app.config.get("TESTING"):
            log.warning("SECRET_KEY is not set: using a random one for this process")
    if not app.config.get("TESTING"):
        setup_logging("website")
    app.config["TIMEZONE"] = timezone(app.config["TIMEZONE"])  # ValueError: a clear message
    try:
        app.config["LANGUAGE"] = check_language(app.config["LANGUAGE"])
    except ValueError as exc:
        raise ValueError(f"{LANGUAGE_ENV}: {exc}") from None
    setup_languages(app)
    festival: Festival = festival_from_config(app.config)  # ValueError: every bad one
    app.extensions["stopmo.festival"] = festival
    storage: Storage = app.config.get("STORAGE") or open_storage(
        app.config["STORAGE_URL"], app.config["PUBLIC_BASE_URL"], app.config["PRESIGN_SECONDS"])
    cache = app.config["REDIS"] if "REDIS" in app.config else _redis(
        app.config["REDIS_URL"], app.config["REDIS_TLS_VERIFY"])
    breaker = Breaker("redis", pause=app.config["REDIS_BACKOFF_SECONDS"])
    app.extensions["stopmo.catalog"] = Catalog(storage, cache, max_age=app.config["CACHE_SECONDS"],
                                               breaker=breaker,
                                               recheck=app.config.get("CACHE_RECHECK_SECONDS",
                                                                      0.25))
    app.extensions["stopmo.storage"] = storage
    app.extensions["stopmo.pages"] = PageCache()
    media_origin = storage.media_origin or ""
    images = " ".join(dict.fromkeys(o for o in ("'self'", media_origin, festival.logo_origin) if o))

    @app.after_request
    def security_headers(response: Response) -> Response:
        media = f"'self' {media_origin}".strip()
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; img-src {images} data:; media-src {media}; "
            "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    from . import api, health, owner, views

    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(owner.bp)
    app.register_blueprint(health.bp)
    owner.limits(app, *_limits_storage(cache))
    return app


def _limits_storage(cache: redis.Redis | None) -> tuple[str, dict[str, Any]]:
    """Where the rate limits count: the site's Redis (its connections), shared by every
    worker and dyno; memory when the site runs without Redis."""
    if cache is None:
        return "memory://", {}
    return "redis://", {"connection_pool": cache.connection_pool}
