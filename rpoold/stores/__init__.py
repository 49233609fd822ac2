"""
Durable stores of records (``rpoold.records.IRecords``): one SQLite file
(``rpoold.stores.sqlite``), a Redis (``rpoold.stores.redis``), and
``open_store``, which picks one from a URL (``rpoold.stores.urls``).
"""

from rpoold.stores.urls import open_store

__all__ = ["open_store"]
