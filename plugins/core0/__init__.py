"""The core0 backend: nodes reached over the core0 Redis protocol."""
