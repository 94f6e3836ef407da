"""Errors of the app layer (imported by the CLI, the commands and the modules they run, so none of them
imports another just for an exception type)."""


class UsageError(ValueError):
    """A command line that cannot be run as given; the message is one readable line."""
