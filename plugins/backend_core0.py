"""The ``core0`` backend plugin: each node's core0 agent, over its Redis protocol."""

from plugins.core0.registry import NODES_SCHEMA
from rpoold.plugin import BackendPlugin

core0 = BackendPlugin(
    name="core0",
    description="Each node's core0 agent over its Redis protocol; every family but "
                "storage clusters and vdisks.",
    factory="plugins.core0.backend:Core0Backend",
    options_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "nodes": NODES_SCHEMA,
            "nodes_file": {"type": "string", "minLength": 1},
            "registry": {"type": "string", "pattern": "^[A-Za-z0-9_-]+:[^:]+$"},
            "pool_size": {"type": "integer", "minimum": 1, "maximum": 1024, "default": 8},
            "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 10},
            "ping_timeout": {"type": "number", "exclusiveMinimum": 0, "default": 1},
            "health_timeout": {"type": "number", "exclusiveMinimum": 0, "default": 2},
            "container_cache_seconds": {"type": "number", "minimum": 0, "default": 300},
            "transition_seconds": {"type": "number", "minimum": 0, "default": 0.1},
        },
    },
)
