"""A core0 node simulator serving plugins.poolsim over the core0 Redis protocol."""
