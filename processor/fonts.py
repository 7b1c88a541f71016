"""The title card's fonts, found on disk once; kept apart from drawing (no Pillow here), so a
command can check that they are installed before it needs them."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
FONT_PACKAGES = ("fonts-dejavu-core", "fonts-noto-core")
# Preferred first; DejaVu last, as it covers Latin, Hebrew and Arabic in one face.
_REGULAR = ("NotoSans-Regular.ttf", "NotoSansHebrew-Regular.ttf",
            "NotoSansArabic-Regular.ttf", "DejaVuSans.ttf")
_BOLD = ("NotoSans-Bold.ttf", "NotoSansHebrew-Bold.ttf", "NotoSansArabic-Bold.ttf",
         "DejaVuSans-Bold.ttf")


class FontsMissing(RuntimeError):
    """No usable font file was found on this machine."""


@dataclass(frozen=True, slots=True)
class FontSet:
    """Font files in order of preference; each text gets the first that has all its glyphs
    (`cardtext.pick_font`)."""

    regular: tuple[Path, ...]
    bold: tuple[Path, ...]

    def __post_init__(self) -> None:
        """Refuse a set without a regular or a bold font."""
        if not self.regular or not self.bold:
            raise ValueError("FontSet: expected at least one regular and one bold font")

    @classmethod
    def find(cls, dirs: Sequence[Path] = FONT_DIRS) -> FontSet:
        """Locate the Noto and DejaVu fonts; raise FontsMissing if there is none."""
        found: dict[str, Path] = {}
        for top in dirs:
            for root, subdirs, files in os.walk(top):
                subdirs.sort()
                for name in sorted(set(files) & set(_REGULAR + _BOLD)):
                    found.setdefault(name, Path(root) / name)
        regular = tuple(found[n] for n in _REGULAR if n in found)
        bold = tuple(found[n] for n in _BOLD if n in found)
        if not regular and not bold:
            raise FontsMissing(
                f"no title card fonts ({', '.join(_REGULAR + _BOLD)}) in "
                f"{', '.join(str(d) for d in dirs)}; install the Debian packages "
                f"{' and '.join(FONT_PACKAGES)}")
        return cls(regular or bold, bold or regular)


@functools.cache
def default_fonts() -> FontSet:
    """Return this machine's fonts, looked for once."""
    return FontSet.find()
