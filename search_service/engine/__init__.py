"""Index engines behind one seam (:mod:`.base`); :func:`open_engine` is the one
place that picks an implementation, by the ``engine`` setting."""

from __future__ import annotations

from search_service.engine.base import Engine
from search_service.errors import ConfigError
from search_service.fields import Ranking
from search_service.settings import ENGINES, Settings


def open_engine(settings: Settings, ranking: Ranking | None = None) -> Engine:
    """The engine ``settings.engine`` names, over ``settings``' index."""
    if settings.engine == "whoosh":
        from search_service.engine.whoosh.engine import WhooshEngine

        return WhooshEngine(settings, ranking)
    if settings.engine == "opensearch":
        from search_service.engine.opensearch.engine import OpenSearchEngine

        return OpenSearchEngine(settings, ranking)
    raise ConfigError(f"unknown engine {settings.engine!r} (SEARCH_ENGINE); choose one of {', '.join(ENGINES)}")
