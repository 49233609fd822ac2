"""
poolsim: the simulated pool.  Nodes running a core0-like agent, with
containers, jobs, processes, files, bridges, disks and btrfs pools,
ZeroTier networks and VMs.

One model, two faces: the mock backend runs its commands in process, and
the core0 simulator (``plugins.core0sim``) serves it over the core0 Redis
protocol.  Method names and return shapes follow core0's built-in commands
(see the protocol reference), so both faces see the same data.

A simulator: it may import the product (``rpoold``, ``plugins.core0``);
no backend imports it.
"""
