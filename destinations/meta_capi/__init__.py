"""The ``meta_capi`` destination: Meta (Facebook) Conversions API server events."""

from destinations.meta_capi.client import MetaCapiDestination
from destinations.meta_capi.config import MetaCapiConfig

plugin = MetaCapiDestination

__all__ = ["MetaCapiConfig", "MetaCapiDestination", "plugin"]
