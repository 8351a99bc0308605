"""Web pages of accounts: sign up, log in, log out, and the account settings page.

Thin: parse a form, call a service, render or redirect. Logging in and out goes through
Django's own views; accounts/signals.py records each session at login and closes its sockets
at logout.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.http import require_http_methods

from streams.errors import CONFLICT, ChatError
from streams.web.api import LoginThrottle, SignupThrottle

from . import services
from .forms import AccountDeleteForm, LoginForm, SignupForm


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignupForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not SignupThrottle().allow_request(request, None):
            form.add_error(None, "Too many sign-ups from your address; try again later.")
            status = 429
        elif form.is_valid():
            try:
                user = services.user_create(
                    username=form.cleaned_data["username"], password=form.cleaned_data["password1"]
                )
            except ChatError as exc:
                # The service checks the username's characters and the password's strength.
                form.add_error("username" if exc.code == CONFLICT else None, exc.detail)
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "accounts/signup.html", {"form": form}, status=status)


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        throttle = LoginThrottle()
        if not throttle.allow_request(request, None):
            services.login_throttled_record(
                username=request.POST.get("username"), ip=throttle.get_ident(request), via="log-in page"
            )
            form = self.get_form()
            form.add_error(None, "Too many log-in attempts from your address; try again in a minute.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


@login_required
@require_http_methods(["GET", "POST"])
def account(request):
    form = AccountDeleteForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        services.account_delete_request(user=request.user, erase_messages=form.cleaned_data["erase_messages"])
        logout(request)
        messages.success(request, "Your account was deleted.")
        return redirect(resolve_url(settings.LOGIN_URL))
    return render(request, "accounts/account.html", {"form": form})
