"""
The ``ays`` harness: family tests against rpoold in the original's split
deployment (AYS for the AYS-based families, core0 for the direct ones,
nodes from AYS), with ayssim, core0sim and its redis-server children as
real processes, shared by the whole session and stopped at its end.
"""

from __future__ import annotations

from testbed.ays_split import AYS_FAMILIES, CORE0, DIRECT_FAMILIES, SplitEnvironment
from tests.support.backends import Harness, Shared, register

_shared = Shared(lambda: SplitEnvironment().start())
#: The session's environment, started on first use.
environment = _shared.get

AYS = register(Harness(
    name="ays",
    families=AYS_FAMILIES | DIRECT_FAMILIES if CORE0 else AYS_FAMILIES,
    open=_shared.open,
    patience=15.0,
    close=_shared.close,
))
