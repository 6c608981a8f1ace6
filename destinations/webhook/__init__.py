"""The ``webhook`` destination: canonical events POSTed as JSON, optionally HMAC-signed."""

from destinations.webhook.client import WebhookDestination
from destinations.webhook.config import WebhookConfig

plugin = WebhookDestination

__all__ = ["WebhookConfig", "WebhookDestination", "plugin"]
