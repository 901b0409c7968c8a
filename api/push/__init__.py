"""Web Push: subscriptions, the notification outbox and the worker that drains it."""
