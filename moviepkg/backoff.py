"""How long to wait before the next try: exponential, capped, with jitter.

One helper for every retry in stopmo: the sync agent's deliveries, the
processor's encode steps and publish queue, the big screen's reconnects.
Jitter spreads the retries of many packages and many boxes sharing one uplink,
so they do not all knock at the same instant. (The processor persists a
package's attempt count in its state file; this module only computes delays.)
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(attempt: int, base: float, cap: float,
                  rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the attempt-th failure in a row (1-based): between half and
    all of min(cap, base * 2**(attempt-1)); rng returns a number in [0, 1]."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 1) - 1, 60))
    return ceiling * (0.5 + rng() / 2)


class Backoff:
    """A run of failures: base, 2x base, 4x ... up to cap, each 50-100 % (jitter)."""

    def __init__(self, base: float, cap: float,
                 rng: Callable[[], float] = random.random) -> None:
        self.base = base
        self.cap = cap
        self.rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        """The wait before the next try; each call counts one more failure."""
        self.failures += 1
        return backoff_delay(self.failures, self.base, self.cap, self.rng)

    def reset(self) -> None:
        """A success: the next failure starts from base again."""
        self.failures = 0
