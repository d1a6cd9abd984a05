"""Governance errors. All are InputError (CLI exit 2); the API maps each family to its status by MRO."""
from __future__ import annotations

from civicaup.errors import CivicaupError, InputError


class NotFoundError(InputError):
    """No such request, case, machine or token in this city (another city's ids are not found either)."""


class ForbiddenError(InputError):
    """The person may not see or do this."""


class ConflictError(InputError):
    """The thing is in a state that does not allow this (already decided, expired, closed)."""


class AuthError(CivicaupError):
    """No valid token: missing, unknown, expired, revoked, or its person has left."""
