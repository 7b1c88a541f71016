"""Errors raised while reading, validating or writing movie packages.

Every message names the file or field, what was expected and what was found,
so one line in a log or on a terminal says why a package was refused.
"""

from __future__ import annotations


class PackageError(Exception):
    """Base class: something is wrong with a movie package or a movie record."""

    reason = "invalid"

    def __init__(self, where: str, expected: str, found: str) -> None:
        # Names come from outside: never let one break the one-line message or a terminal.
        self.where = where if where.isprintable() else repr(where)
        self.expected = expected
        self.found = found if found.isprintable() else repr(found)
        super().__init__(f"{self.where}: expected {expected}, found {self.found}")


class IncompletePackage(PackageError):
    """The package is not finished yet: MANIFEST or the flag file is missing."""

    reason = "incomplete"


class BadName(PackageError):
    """A folder or file name is not allowed (odd name, path traversal, hidden)."""

    reason = "bad-name"


class StrayEntry(PackageError):
    """The folder holds something that is not part of a package."""

    reason = "stray-entry"


class SymlinkFound(PackageError):
    """A symbolic link, which a package must never hold."""

    reason = "symlink"


class SubfolderFound(PackageError):
    """A folder inside the package, which a package must never hold."""

    reason = "subfolder"


class FlagError(PackageError):
    """Both flags, or a flag that is not an empty file."""

    reason = "flag"


class FrameNumberingError(PackageError):
    """Frames are not numbered 0000, 0001, ... without gaps or duplicates."""

    reason = "numbering"


class FrameMismatch(PackageError):
    """A frame differs from what MANIFEST says (count, size or checksum)."""

    reason = "mismatch"


class JpegError(PackageError):
    """A frame is not a well-formed JPEG."""

    reason = "jpeg"


class ManifestError(PackageError):
    """MANIFEST is not a valid v1 manifest."""

    reason = "manifest"


class LimitExceeded(PackageError):
    """A configured limit (frames, bytes, pixels) is exceeded."""

    reason = "limit"


class RecordError(PackageError):
    """A movie record or the movie index is not valid."""

    reason = "record"


class WriterError(Exception):
    """The package writer was used in a way that cannot work (e.g. finished twice)."""
