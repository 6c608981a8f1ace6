"""The ``google_ads`` destination: Data Manager event ingestion, or click conversion upload."""

from destinations.google_ads.client import GoogleAdsDestination
from destinations.google_ads.config import GoogleAdsConfig

plugin = GoogleAdsDestination

__all__ = ["GoogleAdsConfig", "GoogleAdsDestination", "plugin"]
