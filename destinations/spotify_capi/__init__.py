"""The ``spotify_capi`` destination: Spotify Ads Manager Conversions API (server-side events)."""

from destinations.spotify_capi.client import SpotifyCapiDestination
from destinations.spotify_capi.config import SpotifyCapiConfig

plugin = SpotifyCapiDestination

__all__ = ["SpotifyCapiConfig", "SpotifyCapiDestination", "plugin"]
