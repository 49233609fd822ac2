"""
``rpool``: a command-line client of the G8OS Resource Pool API served by
rpoold.  Every operation comes from the server's ``/openapi.json`` (``rpool
call``, ``rpool api``); the common ones have readable commands (``rpool
nodes``, ``rpool exec``, ``rpool reboot --wait``, ...).  Installed with the
``cli`` extra; the daemon never imports it.  See docs/rpool.md.
"""

__version__ = "0.1.0"
