"""
The core0 command kit: the resource families made of core0 commands, as
plain objects that run on any ``rpoold.nodes.ICommandClient``.

The core0 backend runs them on each node's agent over Redis; the mock runs
the same objects on its simulated nodes in process, so that the two answer
alike.  Each family takes what it needs: the ``NodeDirectory`` (the nodes
of a registry, each with its command client), the backend's ``IRecords``
(what the nodes cannot tell), and a clock where things take time.
"""
