"""A core0 node simulator serving plugins.model over the core0 Redis protocol."""
