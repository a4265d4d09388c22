"""Merchant accounts of the admin panel."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, String, true

from impexmod.extensions import db
from impexmod.models.catalog import now

__all__ = ["User"]


class User(db.Model):
    """A merchant who signs in to the admin panel; the password is stored hashed."""

    __tablename__ = "admin_user"
    id = Column(Integer, primary_key=True)
    email = Column(String(255), nullable=False, unique=True)
    # werkzeug.security hashes ("scrypt:...$salt$hash") are about 160 characters.
    password_hash = Column(String(255), nullable=False)
    active = Column(Boolean, nullable=False, default=True, server_default=true())
    created_at = Column(DateTime, nullable=False, default=now)
    last_login_at = Column(DateTime)
    # The panel's language for this merchant ("en", "fr"); None: the browser's.
    language = Column(String(8))

    # What Flask-Login asks of a user, without making the core depend on Flask-Login.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        """A disabled account cannot sign in, and its open sessions end."""
        return bool(self.active)

    def get_id(self) -> str:
        """The id kept in the session."""
        return str(self.id)
