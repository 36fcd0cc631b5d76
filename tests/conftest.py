"""Test session settings shared by every tier.

Hypothesis runs a fixed profile in CI (``CI`` set, as ``.ci/run`` is): derandomized,
so a CI run is reproducible and a failure there is the same failure on a laptop.
Elsewhere it explores new examples each run.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
