"""Listener lists: a domain tells the others of its changes, in the caller's
transaction, without importing them (api.incidents' hooks, api.auth's device
events). A listener is any object or module; it defines the events it wants."""


def add(listeners: list, listener):
    """Add `listener` once; returns it, so it can decorate a class."""
    if listener not in listeners:
        listeners.append(listener)
    return listener


def call(listeners: list, event: str, *args) -> None:
    """Call `event` on every listener that defines it."""
    for listener in list(listeners):
        handler = getattr(listener, event, None)
        if handler is not None:
            handler(*args)
