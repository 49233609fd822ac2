"""The ``ays`` backend plugin: the AYS orchestrator's REST API."""

from rpoold.plugin import BackendPlugin

_SECONDS = {"type": "number", "exclusiveMinimum": 0}

ays = BackendPlugin(
    name="ays",
    description=(
        "The AYS orchestrator's REST API: nodes, bridges, storage pools, filesystems, "
        "ZeroTier, containers, VMs, storage clusters, vdisks."
    ),
    factory="plugins.ays.factory:from_options",
    options_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "pattern": "^https?://[^/]+(/.*)?$"},
            "repository": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$",
                           "default": "objstor"},
            "request_timeout": {**_SECONDS, "default": 10},
            "run_timeout": {**_SECONDS, "default": 20},
            "poll_interval": {**_SECONDS, "default": 0.05},
            "poll_max_interval": {**_SECONDS, "default": 1.0},
            "follow_timeout": {**_SECONDS, "default": 600},
            "startup_retry_interval": {**_SECONDS, "default": 0.2},
            "startup_retry_max_interval": {**_SECONDS, "default": 10},
            "core0_timeout": {**_SECONDS, "default": 5},
            "live_status_timeout": {"type": "number", "minimum": 0, "default": 1},
            "registry_ttl": {"type": "number", "minimum": 0, "default": 10},
            "health_timeout": {**_SECONDS, "default": 2},
        },
    },
)
