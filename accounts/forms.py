"""Web forms of the accounts pages: they parse and check input; the services do the work."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AdminUserCreationForm, AuthenticationForm, UserChangeForm

from streams.errors import ChatError

from . import usernames
from .services import suspension_text


class LoginForm(AuthenticationForm):
    """Django's log-in form, refusing a suspended account with when its suspension ends."""

    def confirm_login_allowed(self, user) -> None:
        super().confirm_login_allowed(user)
        if user.is_suspended():
            raise forms.ValidationError(suspension_text(user), code="suspended")


class SignupForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
        help_text="Letters of one alphabet, digits and @ . + - _ only.",
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_username(self):
        # The checks that need no database, shown beside the field; the sign-up service checks
        # the rest (taken, reserved, look-alike) again with everything else.
        try:
            return usernames.username_shape_check(self.cleaned_data["username"])
        except ChatError as exc:
            raise forms.ValidationError(exc.detail) from None

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return cleaned


class _AdminUsernameMixin:
    """The username rules of sign-up (accounts/usernames.py) for accounts added or renamed in the admin.

    A name left as it was is not checked again: a look-alike accepted before the rules existed
    can still be edited (deactivated, say) without being renamed first.
    """

    def clean_username(self):
        username = self.cleaned_data.get("username")
        if self.instance.pk is not None and username == self.instance.username:
            return username
        try:
            return usernames.username_check(username=username, exclude_user_id=self.instance.pk)
        except ChatError as exc:
            raise forms.ValidationError(exc.detail, code=exc.code) from None


class UserAddForm(_AdminUsernameMixin, AdminUserCreationForm):
    """The admin's "add user" form."""


class UserEditForm(_AdminUsernameMixin, UserChangeForm):
    """The admin's user change form."""


class AccountDeleteForm(forms.Form):
    """Deleting asks for the password again: a borrowed unlocked browser must not be enough."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    erase_messages = forms.BooleanField(
        label="Erase my messages",
        required=False,
        help_text="Without this, your messages stay for the other members, shown as from “deleted user”.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your password.")
        return password
