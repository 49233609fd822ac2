"""An AYS simulator whose actions act on simulated core0 nodes."""
