"""``python -m rpool``: the same as the ``rpool`` command."""

from rpool.entry import main

main()
