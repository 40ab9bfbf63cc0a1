"""Alerts: rules over new articles, one digest email per rule, a delivery log in the Store."""

from pipelines.alert.delivery import AlertReport, DigestOutcome, notify, queue_matches, send_pending
from pipelines.alert.mailer import DeliveryError, mailer_for
from pipelines.alert.rules import Rule, load_rules

__all__ = [
    "AlertReport",
    "DeliveryError",
    "DigestOutcome",
    "Rule",
    "load_rules",
    "mailer_for",
    "notify",
    "queue_matches",
    "send_pending",
]
