"""Shared fixtures: a sample farm started on a free port for the whole test session."""

from __future__ import annotations

import pytest

from crawler.samplefarm import RunningFarm, start_farm


@pytest.fixture(scope="session")
def farm() -> RunningFarm:
    """Default farm: 3 autoblogs of 12 articles, engine 0.3.4 (La Quadrature first)."""
    with start_farm(autoblogs=3, articles=12, seed=1) as f:
        yield f
