"""REST shapes of accounts and tokens: requests in, answers out."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from streams.web.api import JSONBodySerializer, QuerySerializer


# -- requests -------------------------------------------------------------------------------------
class CredentialsSerializer(JSONBodySerializer):
    """``{username, password}``: for signing up and for getting a token."""

    username = serializers.CharField(max_length=150, trim_whitespace=True)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class AccountDeleteSerializer(JSONBodySerializer):
    erase_messages = serializers.BooleanField(
        required=False, default=False, help_text="Also erase the bodies of the user's messages."
    )


class UserSearchQuerySerializer(QuerySerializer):
    q = serializers.CharField(max_length=150, allow_blank=True, required=False, default="")


# -- answers --------------------------------------------------------------------------------------
class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "username"]


class AccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "username", "date_joined"]


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>` (REST and WebSocket).")
