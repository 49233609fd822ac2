"""The ``mock`` backend plugin: an in-memory pool of simulated nodes."""

from rpoold.plugin import BackendPlugin

mock = BackendPlugin(
    name="mock",
    description="In-memory pool of simulated nodes; serves every resource family.",
    factory="plugins.poolsim.mock:mock_backend",
    process_bound="its simulated pool lives in one process's memory",
    options_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "nodes": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 2},
            "reboot_seconds": {"type": "number", "minimum": 0, "default": 1.0},
            "transition_seconds": {"type": "number", "minimum": 0, "default": 0.1},
        },
    },
)
