"""REST views of accounts: sign-up, API tokens, the caller's account, finding users.

Thin: parse, call a service or selector, format. Wrong credentials for a token answer
400 ``invalid`` (as DRF's own token view does): the request carried no credentials that failed
authentication, it asked for a token with bad ones.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from streams.web.api import ChatAPIView, LoginThrottle, SignupThrottle, error_responses, path_id, validated

from . import selectors, services
from .serializers import (
    AccountDeleteSerializer,
    AccountSerializer,
    CredentialsSerializer,
    DeviceRegisterSerializer,
    DeviceSerializer,
    TokenSerializer,
    UserSearchQuerySerializer,
    UserSerializer,
)


class SignupView(ChatAPIView):
    permission_classes = [AllowAny]
    write_throttle = SignupThrottle

    @extend_schema(
        operation_id="accounts_create",
        summary="Sign up",
        description="`invalid` for a bad username or a weak password, `conflict` when the username is taken "
        "(in any case). Limited per client address by the `signup` rate.",
        request=CredentialsSerializer,
        responses={201: UserSerializer, **error_responses(400, 409)},
    )
    def post(self, request):
        data = validated(CredentialsSerializer, request.data)
        user = services.user_create(username=data["username"], password=data["password"])
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class TokenView(ChatAPIView):
    write_throttle = LoginThrottle  # a password check: limited like the log-in page

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    def throttled(self, request, wait):
        if request.method == "POST":  # a password attempt refused (DELETE, revoking, is not one)
            try:
                username = request.data.get("username") if isinstance(request.data, dict) else None
            except exceptions.APIException:  # a body that does not parse: refused as throttled all the same
                username = None
            services.login_throttled_record(username=username, ip=LoginThrottle().get_ident(request), via="API token")
        super().throttled(request, wait)

    @extend_schema(
        operation_id="auth_token_create",
        summary="Get the API token for a username and password",
        description="The same token until it is revoked. Wrong credentials, or a deactivated account, answer "
        "400 `invalid`.",
        request=CredentialsSerializer,
        responses={200: TokenSerializer, **error_responses(400)},
    )
    def post(self, request):
        data = validated(CredentialsSerializer, request.data)
        token = services.token_issue(username=data["username"], password=data["password"])
        return Response(TokenSerializer({"token": token.key}).data)

    @extend_schema(
        operation_id="auth_token_destroy",
        summary="Revoke the caller's API token",
        description="WebSockets opened with the token are closed with code 4401.",
        request=None,
        responses={204: None, **error_responses()},
    )
    def delete(self, request):
        services.token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(ChatAPIView):
    @extend_schema(
        operation_id="accounts_me_retrieve",
        summary="The caller's account",
        responses={200: AccountSerializer, **error_responses()},
    )
    def get(self, request):
        return Response(AccountSerializer(request.user).data)

    @extend_schema(
        operation_id="accounts_me_destroy",
        summary="Delete the caller's account",
        description="The account stops at once (no login, token, session or socket). Memberships, read "
        "positions and the drawer are removed; rooms the user owned pass to another member or are deleted "
        'when nobody else is in them. Messages stay for the other members as from "deleted user", or '
        "with their bodies erased when `erase_messages` is true. A large account finishes in the background.",
        request=AccountDeleteSerializer,
        responses={204: None, **error_responses(400)},
    )
    def delete(self, request):
        data = validated(AccountDeleteSerializer, request.data)
        services.account_delete_request(user=request.user, erase_messages=data["erase_messages"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class UsersView(ChatAPIView):
    @extend_schema(
        operation_id="users_list",
        summary="Find people to invite by username",
        description=f"Active users whose username contains `q` (any case), exact and prefix matches first, at "
        f"most {selectors.USER_SEARCH_MAX}; the caller is left out. An empty `q` finds nobody.",
        parameters=[OpenApiParameter("q", str, description="Part of a username.")],
        responses={200: UserSerializer(many=True), **error_responses(400)},
    )
    def get(self, request):
        data = validated(UserSearchQuerySerializer, request.query_params)
        users = selectors.users_search(query=data["q"], exclude_user_id=request.user.pk)
        return Response(UserSerializer(users, many=True).data)


class DevicesView(ChatAPIView):
    @extend_schema(
        operation_id="devices_list",
        summary="My devices registered for push notifications",
        description="Newest first; their tokens are not shown back.",
        responses={200: DeviceSerializer(many=True), **error_responses()},
    )
    def get(self, request):
        return Response(DeviceSerializer(selectors.devices_of(user=request.user), many=True).data)

    @extend_schema(
        operation_id="devices_register",
        summary="Register this device for push notifications",
        description="Mentions and direct messages are pushed to it while none of my sockets is open, never from a "
        "room I muted. Registering the same token again answers 200 with the device (moved to me if it was "
        "another account's).",
        request=DeviceRegisterSerializer,
        responses={201: DeviceSerializer, 200: DeviceSerializer, **error_responses(400)},
    )
    def post(self, request):
        data = validated(DeviceRegisterSerializer, request.data)
        device, created = services.device_register(user=request.user, **data)
        return Response(
            DeviceSerializer(device).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


@extend_schema(parameters=[path_id("device_id", "The device's id.")])
class DeviceView(ChatAPIView):
    @extend_schema(
        operation_id="devices_remove",
        summary="Stop pushing to this device",
        responses={204: None, **error_responses(404)},
    )
    def delete(self, request, device_id: int):
        services.device_remove(user=request.user, device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
