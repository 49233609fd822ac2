"""
Real components on loopback, for the tests and the benchmarks alike: child
processes that are always stopped, free ports, a ``redis-server`` child,
``twistd rpoold`` / ``core0sim`` / ``ayssim`` children and the deployments
made of them, a small core0 agent, and an HTTP client of the API.

``tests/support`` and ``bench`` import it; it is not shipped (see
``setup.cfg``), and nothing under ``rpoold`` or ``plugins`` imports it.
"""
