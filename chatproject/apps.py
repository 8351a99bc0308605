"""App configurations of the project package itself."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class ChatAdminConfig(AdminConfig):
    """Django's admin, whose default site (``admin.site``, ``@admin.register``) is ours."""

    default_site = "chatproject.admin.ChatAdminSite"
