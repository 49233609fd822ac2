"""The AYS backend: the AYS orchestrator REST API, driven with treq."""
