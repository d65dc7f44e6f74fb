"""The 33-number registry: 12345 and the 32 legacy lines with their merge modes."""

from hotline.registry.loader import Problem, RegistryInvalid, load_registry, parse_registry
from hotline.registry.model import PLATFORM_NUMBER, Hotline, Mode, Registry, ServiceHours
from hotline.registry.store import SyncResult, list_hotlines, sync_registry

__all__ = [
    "PLATFORM_NUMBER", "Hotline", "Mode", "Problem", "Registry", "RegistryInvalid",
    "ServiceHours", "SyncResult", "list_hotlines", "load_registry", "parse_registry",
    "sync_registry",
]
