"""How much RAM the system can give now without swapping, and how much it has (psutil: Linux
MemAvailable, macOS and Windows alike). The GPU's memory is asked of torch by its callers."""
from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Memory:
    free: int           # bytes the system can give without swapping
    total: int
    where: str          # "RAM" or "VRAM"


def system_ram() -> Memory | None:
    """None where the system will not say (a sandbox without /proc)."""
    try:
        vm = psutil.virtual_memory()
    except (OSError, RuntimeError, AttributeError):
        return None
    return Memory(int(vm.available), int(vm.total), "RAM")


def available_ram() -> int | None:
    ram = system_ram()
    return ram.free if ram else None
