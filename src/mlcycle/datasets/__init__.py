"""Datasets: sources, versioned snapshots, profiles, contracts, validation, preparation.

The service layer of the data stage. ``mlcycle.data`` is the SDK face of it
(``mc.data.ingest(...)``); ``Client.data`` is the same service bound to a client's stores.
"""
