"""The model registry: immutable, hashed bundles and the aliases that point at them."""

from __future__ import annotations

from flywheel_mlops.registry.aliases import Alias
from flywheel_mlops.registry.store import AliasRecord, Registry

__all__ = ["Alias", "AliasRecord", "Registry"]
