"""Where alerts go beyond the console's page: Apprise (Telegram, ntfy, e-mail, webhooks…)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger("stopmo.ops.notifier")


class Notifier:
    """Send one message to the operators; an implementation returns False when it failed.

    `firing` is True for a new alert and False for "resolved". It must not raise for a
    delivery failure (the engine retries later) and should give up within seconds.
    """

    def send(self, title: str, body: str, firing: bool) -> bool:
        """Send one notification; True once it was delivered."""
        raise NotImplementedError


class LogNotifier(Notifier):
    """No alert URL is set: alerts only show on the console and in the log."""

    def send(self, title: str, body: str, firing: bool) -> bool:
        """Log the notification."""
        log.info("alert (no alerts.urls set): %s", title, extra={"body": body})
        return True


class AppriseNotifier(Notifier):
    """Send through Apprise to every configured URL."""

    def __init__(self, urls: Sequence[str]) -> None:
        import apprise

        self._apprise = apprise.Apprise()
        self._type = apprise.NotifyType
        bad = [url for url in urls if not self._apprise.add(url)]
        if bad:
            # URLs can hold tokens: name only the scheme of the ones Apprise refused.
            schemes = ", ".join(url.split("://", 1)[0] for url in bad)
            raise ValueError(f"Apprise does not understand these alert URLs: {schemes}://…")

    def send(self, title: str, body: str, firing: bool) -> bool:
        """Notify every URL; True when all of them took it."""
        kind = self._type.FAILURE if firing else self._type.SUCCESS
        try:
            return bool(self._apprise.notify(title=title, body=body, notify_type=kind))
        except Exception:  # a plugin's bug must not stop the alert engine
            log.exception("Apprise failed")
            return False


def make_notifier(urls: Sequence[str]) -> Notifier:
    """Apprise for the configured URLs; the log alone when there are none."""
    return AppriseNotifier(urls) if urls else LogNotifier()
