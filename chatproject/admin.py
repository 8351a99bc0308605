"""The admin site: Django's, with its log-in behind the same throttle as every other log-in.

Without it the admin's password form was the one place to guess passwords at full speed: the
web log-in page and the API token answer 429 after ``THROTTLE_LOGIN`` attempts per client
address, and this site now counts against the very same ``login`` counter.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from accounts.services import login_throttled_record
from streams.web.api import LoginThrottle

THROTTLED = "Too many log-in attempts from your address; try again in a minute."


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's log-in form, refusing without checking the password once throttled."""

    def clean(self):
        if getattr(self.request, "login_throttled", False):
            raise ValidationError(THROTTLED, code="throttled")
        return super().clean()


class ChatAdminSite(admin.AdminSite):
    """``admin.site``: every password attempt counts against the ``login`` throttle."""

    login_form = ThrottledAdminAuthenticationForm

    def login(self, request, extra_context=None):
        throttle = LoginThrottle()
        throttled = request.method == "POST" and not throttle.allow_request(request, None)
        if throttled:
            login_throttled_record(username=request.POST.get("username"), ip=throttle.get_ident(request), via="admin")
        # The form reads it: Django's own view then renders the page with the error.
        request.login_throttled = throttled
        response = super().login(request, extra_context)
        if throttled:
            response.status_code = 429
        return response
