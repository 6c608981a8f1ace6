"""The ``ga4`` destination: the GA4 Measurement Protocol, with optional validation first."""

from destinations.ga4.client import Ga4Destination
from destinations.ga4.config import Ga4Config

plugin = Ga4Destination

__all__ = ["Ga4Config", "Ga4Destination", "plugin"]
