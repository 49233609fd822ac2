"""
Response shaping: what a backend's answer becomes before it is sent (empty
lists, always-present fields, extension fields, unknown keys dropped).
"""

from __future__ import annotations

from rpoold.response_shaping import ResponseShaper

SHAPER = ResponseShaper()


def test_shaping_fills_drops_and_copies() -> None:
    shape = SHAPER.shape
    # Unknown keys dropped, always-present fields zero-filled, None scalars zeroed.
    mem = shape("MemInfo", {"total": 10, "free": None, "bogus": 1})
    assert mem == {"active": 0, "available": 0, "buffers": 0, "cached": 0, "free": 0, "inactive": 0,
                   "total": 10, "used": 0, "usedPercent": 0, "wired": 0}
    # Extension field copied from its source when absent, kept when given.
    assert shape("ContainerListItem[]", [{"name": "c"}])[0]["id"] == "c"
    assert shape("ContainerListItem", {"name": "c", "id": "x"})["id"] == "x"
    # A nested object: None shaped as {}; an array of objects: None is [], items shaped.
    cpu = ("user", "system", "idle", "nice", "iowait", "irq", "softirq", "steal", "guestnice", "stolen")
    assert shape("Process", {"cpu": None})["cpu"] == dict.fromkeys(cpu, 0)
    zerotier = shape("Zerotier", {"routes": [{"target": "10.0.0.0/8", "extra": 1}],
                                  "assignedAddresses": None})
    assert zerotier["routes"] == [{"flags": 0, "metric": 0, "target": "10.0.0.0/8", "via": ""}]
    assert zerotier["assignedAddresses"] == []
    assert shape("Zerotier", {"routes": None})["routes"] == []
    # Lists of plain values and whole-array answers: None becomes [].
    assert shape("string[]", None) == [] and shape("string[]", ["a"]) == ["a"]
    # What is not an object of a contract type passes as it is.
    assert shape("MemInfo", "text") == "text" and shape("boolean", True) is True


def test_shaping_copies_lists() -> None:
    addresses = ["10.0.0.1"]
    shaped = SHAPER.shape("Zerotier", {"assignedAddresses": addresses})
    assert shaped["assignedAddresses"] == addresses and shaped["assignedAddresses"] is not addresses
