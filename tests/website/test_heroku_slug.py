"""The website built as Heroku builds it, and run as Heroku runs it.

A copy of what `git push heroku` sends, a fresh Python 3.11 virtualenv, `pip install
--require-hashes -r requirements.txt` from the package index, then `bin/post_compile`
(the buildpack's steps); then honcho (the Python foreman) runs the Procfile with $PORT,
a real Redis over TLS with a self-signed certificate (as Heroku Redis serves it) and a
real S3 endpoint (moto), and the site serves the movies in the bucket.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from packaging.utils import canonicalize_name

from tests.services import (
    LOCALHOST,
    Daemon,
    RedisServer,
    S3Server,
    free_port,
    require_binary,
)
from tests.website.conftest import StoreBuilder, make_record
from tests.website.served import get
from tests.website.test_heroku import PYPROJECT, locked

pytestmark = pytest.mark.slow  # a real install from the package index, then real servers

ROOT = Path(__file__).resolve().parents[2]
# What the slug must hold (the rest of the checkout may or may not be there).
NEEDED = {"Procfile", ".python-version", "requirements.txt", "pyproject.toml", "README.md",
          "bin", "moviepkg", "website"}
INSTALL_SECONDS = 600
BUCKET, PREFIX = "festival", "jff"
TOKEN = "operator-token-for-the-test"


@dataclass(frozen=True)
class Slug:
    """The app's files as Heroku has them in /app, and the Python it installed into."""

    app: Path
    python: Path

    @property
    def bin(self) -> Path:
        """The folder of python, pip and gunicorn (first on $PATH on a dyno)."""
        return self.python.parent


def slug_files() -> list[str]:
    """What `git push heroku` sends (the checkout's files, committed or not, less what git
    ignores), less what .slugignore leaves out."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                             "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60)
    left_out = {line.strip() for line in (ROOT / ".slugignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    names = [name for name in listed.stdout.decode().split("\0") if name]
    return [name for name in names
            if name.split("/", 1)[0] not in left_out and (ROOT / name).is_file()]


def test_the_slug_holds_what_the_build_needs_and_not_the_rest() -> None:
    """The build's files are pushed; tests, docs and Ansible stay out (.slugignore)."""
    tops = {name.split("/", 1)[0] for name in slug_files()}
    assert tops >= NEEDED, NEEDED - tops
    assert not tops & {"tests", "docs", "ansible"}


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None,
        timeout: float = INSTALL_SECONDS) -> subprocess.CompletedProcess[str]:
    """Run a build step; fail with its output."""
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def slug(tmp_path_factory: pytest.TempPathFactory) -> Slug:
    """Build the app as the Python buildpack does: a fresh venv, the lock, post_compile."""
    base = tmp_path_factory.mktemp("heroku")
    app = base / "app"
    for name in slug_files():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, app / name)
    # The interpreter this virtualenv was made from: the system's Python 3.11.
    base_python = getattr(sys, "_base_executable", sys.executable)
    run([base_python, "-m", "venv", str(base / "python")], cwd=base)
    python = base / "python/bin/python"
    run([str(python), "-m", "pip", "install", "--require-hashes", "--no-input",
         "--disable-pip-version-check", "-r", "requirements.txt"], cwd=app)
    env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(base)}
    run([str(app / "bin/post_compile")], cwd=app, env=env)
    return Slug(app, python)


def test_the_lock_installs_hash_checked_into_a_fresh_python(slug: Slug, tmp_path: Path) -> None:
    """The lock installs whole, nothing else comes in, and the project is installed."""
    run([str(slug.python), "-m", "pip", "check"], cwd=tmp_path)
    listed = run([str(slug.python), "-m", "pip", "list", "--format", "json"], cwd=tmp_path)
    installed = {canonicalize_name(item["name"]): item["version"]
                 for item in json.loads(listed.stdout)}
    pins = {name: version for name, (version, _hashes) in locked().items()}
    # Exactly the lock, the project, and pip: nothing came in unpinned.
    assert installed.pop("pip")
    assert installed == {**pins, "stopmo": PYPROJECT["project"]["version"]}
    # The project itself is installed (not only importable from the app's folder): from
    # elsewhere, with its pages and assets.
    where = run([str(slug.python), "-c", "import website, pathlib; "
                 "print(pathlib.Path(website.__file__).parent)"], cwd=tmp_path).stdout.strip()
    package = Path(where)
    assert slug.app not in package.parents and "site-packages" in package.parts
    assert (package / "templates").is_dir() and (package / "static").is_dir()


class TlsRedis(RedisServer):
    """redis-server that also speaks TLS with a self-signed certificate, as Heroku Redis
    does (the plain port answers only the test's own checks)."""

    def __init__(self, tmpdir: Path) -> None:
        """A server in tmpdir with a fresh self-signed certificate."""
        super().__init__(tmpdir)
        self.tls_port = free_port()
        self.cert, self.key = self.dir / "redis.crt", self.dir / "redis.key"
        subprocess.run([require_binary("openssl"), "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-days", "2", "-subj", "/CN=redis.example",
                        "-keyout", str(self.key), "-out", str(self.cert)],
                       check=True, capture_output=True, timeout=60)

    @property
    def tls_url(self) -> str:
        """The REDIS_URL Heroku Redis gives: rediss:// (TLS)."""
        return f"rediss://{LOCALHOST}:{self.tls_port}/0"

    def argv(self) -> list[str]:
        """The plain server's command line, with a TLS port too."""
        return [*super().argv(), "--tls-port", str(self.tls_port),
                "--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key),
                "--tls-auth-clients", "no"]


class Foreman(Daemon):
    """honcho running the app's Procfile in the app's folder, with only the given settings."""

    name = "honcho"

    def __init__(self, log_dir: Path, app: Path, env: dict[str, str]) -> None:
        """honcho for the app in app, with env only (PORT among it)."""
        super().__init__(log_dir / "honcho.log")
        self.app = app
        self.env = env
        self.port = int(env["PORT"])

    def argv(self) -> list[str]:
        """honcho start in the app's folder, with nothing but the given environment."""
        env = shutil.which("env") or "/usr/bin/env"
        # In the app's folder, as on a dyno: the Procfile names website/gunicorn_conf.py.
        return [env, "-i", "-C", str(self.app),
                *(f"{key}={value}" for key, value in self.env.items()),
                sys.executable, "-m", "honcho", "start", "-f", "Procfile"]

    def ready(self) -> bool:
        """Whether the site answers /healthz."""
        try:
            return get(self.port, "/healthz", timeout=5).status == 200
        except OSError:
            return False


def publish(store: StoreBuilder, s3: S3Server) -> None:
    """Put what the processor publishes into the bucket."""
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    for key in store.files():
        client.upload_file(str(store.root / key), BUCKET, f"{PREFIX}/{key}")


def test_honcho_runs_the_procfile_against_redis_over_tls_and_s3(
        slug: Slug, store: StoreBuilder, s3_server: S3Server, tmp_path: Path) -> None:
    """The Procfile under honcho serves the bucket's movies, cached in Redis over TLS."""
    record = store.add(make_record(7, title="The dragon's dance"))
    publish(store, s3_server)
    with TlsRedis(tmp_path / "redis") as cache:
        settings = {
            "PATH": f"{slug.bin}:/usr/bin:/bin", "HOME": str(tmp_path), "PORT": str(free_port()),
            "STORAGE_URL": f"s3://{BUCKET}/{PREFIX}", **s3_server.env(),
            "REDIS_URL": cache.tls_url, "REDIS_TLS_VERIFY": "false",
            "SECRET_KEY": "a-secret-for-the-test", "HEALTH_TOKEN": TOKEN,
            "WEB_CONCURRENCY": "2",
        }
        with Foreman(tmp_path, slug.app, settings) as site:
            home = get(site.port, "/")
            assert home.status == 200, home.body
            assert "The dragon&#39;s dance" in home.body
            page = get(site.port, f"/movies/{record.id}")
            assert page.status == 200 and s3_server.endpoint_url in page.body  # presigned
            health = get(site.port, "/healthz", {"Authorization": f"Bearer {TOKEN}"})
            assert json.loads(health.body) == {"redis": "ok", "storage": "ok", "movies": 1,
                                               "status": "ok"}
            # The index went into the Redis behind TLS.
            assert redis.Redis(port=cache.port).exists("stopmo:v2:meta")
        log = site.log_path.read_text()
        assert "web.1" in log and "Booting worker" in log, log
