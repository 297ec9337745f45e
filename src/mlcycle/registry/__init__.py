"""The model registry: named models, numbered versions with their lineage, aliases that move
between versions, and the events that record every change.

``RegistryService`` is the service; ``Client.registry`` is the same service bound to a client's
stores. Every version is addressed by one scheme: ``models:/name/3``, ``models:/name@alias``,
``models:/name/latest`` (see :func:`parse_model_uri`).
"""

from mlcycle.registry.service import ModelRef, ModelVersionDiff, RegistryService, parse_model_uri

__all__ = ["ModelRef", "ModelVersionDiff", "RegistryService", "parse_model_uri"]
