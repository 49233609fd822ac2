"""
The simulated pool: nodes running a core0-like agent, with containers,
jobs, processes, files, bridges, disks and btrfs pools, ZeroTier networks
and VMs.

One model, two faces: the mock backend calls it in process, and the core0
simulator serves it over the core0 Redis protocol.  Method names and
return shapes follow core0's built-in commands (see the protocol
reference), so both faces see the same data.
"""
