"""The stores of a remote ``mlcycle server``, spoken to over its REST API with httpx.

>>> http = http_client("http://127.0.0.1:8080", token="s3cret")  # doctest: +SKIP
>>> store, artifacts = RestTrackingStore(http), RestArtifactStore(http)  # doctest: +SKIP

The wire format (non-finite floats, times, the compact log-batch body) is described in
:mod:`mlcycle.store.rest.wire`, which the server uses too.
"""

from mlcycle.store.rest._http import http_client
from mlcycle.store.rest.artifacts import RestArtifactStore
from mlcycle.store.rest.tracking import RestTrackingStore

__all__ = ["RestArtifactStore", "RestTrackingStore", "http_client"]
