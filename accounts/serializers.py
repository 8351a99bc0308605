"""REST shapes of accounts and tokens: requests in, answers out."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from streams.web.api import JSONBodySerializer, QuerySerializer

from .models import Device


# -- requests -------------------------------------------------------------------------------------
class CredentialsSerializer(JSONBodySerializer):
    """``{username, password}``: for signing up and for getting a token."""

    username = serializers.CharField(max_length=150, trim_whitespace=True)
    password = serializers.CharField(max_length=1024, trim_whitespace=False, style={"input_type": "password"})


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


class DeviceSerializer(serializers.Serializer):
    """A device registered for push notifications (its token is not shown back)."""

    id = serializers.IntegerField(read_only=True)
    platform = serializers.ChoiceField(choices=Device.Platform.choices)
    name = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField(read_only=True)
    last_seen_at = serializers.DateTimeField(read_only=True)


class DeviceRegisterSerializer(JSONBodySerializer):
    platform = serializers.ChoiceField(choices=Device.Platform.choices)
    token = serializers.CharField(max_length=1024, help_text="The push service's address of the device.")
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
