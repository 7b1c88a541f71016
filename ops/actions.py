"""The commands panel's forms: each POST sends one command, then back to the page it came from.

The login guard and the CSRF check (ops.auth) cover these routes like every other; the
sender is the operator logged in. What was sent, or why nothing was, is one flash line;
the device's answer then shows in the page's audit log (its live part).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, session
from flask import url_for as url
from werkzeug.wrappers import Response

from moviepkg.commands import CATALOGUE
from moviepkg.telemetry import is_device

from .commands import PROGRAMS, form_args, send
from .fleet import load_fleet
from .views import console

bp = Blueprint("actions", __name__)


def _operator() -> str:
    """The logged-in operator (the guard lets no one else this far)."""
    return str(session.get("user"))


@bp.route("/devices/<name>/commands/<command>", methods=["POST"])
def send_command(name: str, command: str) -> Response:
    """Send one of the catalogue's commands to one of the device's programs."""
    if not is_device(name):
        abort(404)
    ops = console()
    device = load_fleet(ops.db, ops.settings.stations, ops.settings.processor).devices.get(name)
    if device is None:
        abort(404)
    back = url("pages.device_page", name=name)
    spec = CATALOGUE.get(command)
    if spec is None:
        flash(f"Not sent: the console knows no command {command[:40]!r}.", "refused")
        return redirect(back)
    if spec.program not in PROGRAMS.get(device.role, ()):
        flash(f"Not sent: {name} does not run {spec.name} (the {spec.program} does).",
              "refused")
        return redirect(back)
    sent = send(ops, name, spec.name, form_args(spec, request.form), _operator())
    flash(sent.words, sent.kind)
    return redirect(back)


@bp.route("/take-down", methods=["POST"])
def take_down() -> Response:
    """The overview's take-down form: to the processing unit, then to its page (the answer)."""
    ops = console()
    spec = CATALOGUE["take-down"]
    sent = send(ops, ops.settings.processor, spec.name, form_args(spec, request.form),
                _operator())
    flash(sent.words, sent.kind)
    return redirect(url("pages.device_page", name=ops.settings.processor))  # its answer shows there
