"""The one place that decides whether a failure is the package's fault or the world's.

Permanent (the package's content is bad; a retry cannot cure it): quarantine at
once, with a REASON naming the frame or field. Transient (the environment: the
network, the store's endpoint, a full disk, a missing binary, a killed ffmpeg):
keep the package and retry with backoff. (While a package arrives, an incomplete
one is simply not taken yet; once in the work dir, every package error is permanent.)
"""

from __future__ import annotations

from moviepkg.errors import PackageError

from .errors import ContentError


def is_permanent(exc: BaseException) -> bool:
    """Tell whether exc says the package itself is bad (quarantine) rather than the world."""
    return isinstance(exc, PackageError | ContentError)
