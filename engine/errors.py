"""Errors the engine raises on purpose.

Each carries a one-line message fit to print as is; the command line turns them into a
non-zero exit without a traceback.
"""


class PetroStreamError(Exception):
    """Base of every error the engine reports to a user."""


class InputError(PetroStreamError):
    """A file or value given by the user is not what it should be."""


class ModelError(PetroStreamError):
    """A model artifact is missing, corrupt, tampered with or incompatible."""


class BackendError(PetroStreamError):
    """A backend resource is unreachable, missing or refuses access."""


class TransientError(BackendError):
    """A backend failure that goes away by itself: throttling, a 5xx, a dropped connection.

    A long-running worker waits and retries it (:mod:`engine.outage`); a command run once
    reports it like any other :class:`BackendError`.
    """
