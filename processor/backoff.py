"""How long to wait before the next try: exponential, capped, with jitter.

One helper for the processor's retries (encode steps and the publish queue).
Jitter spreads the retries of several packages, and of several processing units
sharing one uplink, so they do not all knock on the endpoint at the same instant.
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, cap: float,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait after the attempt-th failure (1-based): between half and all of
    min(cap, base * 2**(attempt-1)), never more than cap."""
    rng = rng or random.Random()
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 1) - 1, 60))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
