"""Hypothesis profiles: `default` in CI; PROMOTER_HYPOTHESIS_PROFILE=long for a long run."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("PROMOTER_HYPOTHESIS_PROFILE", "default"))
