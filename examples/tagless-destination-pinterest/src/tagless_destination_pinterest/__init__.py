"""A Tagless destination for the Pinterest Conversions API, built on ``router.sdk`` only."""

from tagless_destination_pinterest.client import PinterestDestination
from tagless_destination_pinterest.config import PinterestConfig

__all__ = ["PinterestConfig", "PinterestDestination"]
