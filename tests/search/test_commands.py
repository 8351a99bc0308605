"""manage.py search_rebuild and search_status, as an operator runs them."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.management import call_command
from django.db import connection

from chat_messages.services import messages_store, send_envelope
from search.models import MessageDoc

pytestmark = pytest.mark.django_db


def store(room, sender, *bodies: str) -> None:
    messages_store(sends=[
        send_envelope(room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=body) for body in bodies
    ])  # fmt: skip


def test_rebuild_indexes_what_was_stored_before_the_index_existed_and_says_how_much(make_user, make_room):
    me = make_user()
    store(make_room(owner=me), me, *[f"회의 {i}" for i in range(7)])
    assert not MessageDoc.objects.exists()  # stored without a chat-index consumer
    out, err = io.StringIO(), io.StringIO()

    call_command("search_rebuild", "--batch", "3", stdout=out, stderr=err)

    assert MessageDoc.objects.count() == 7
    assert "Indexed 7 messages" in out.getvalue() and "the index holds 7 documents" in out.getvalue()
    assert "7 / 7 messages (100%)" in err.getvalue()  # the progress bar's last step


def test_the_message_table_no_longer_carries_a_full_text_index():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'chat_messages_message'")
        names = {row[0] for row in cursor.fetchall()}
    assert "message_body_search_idx" not in names
    assert "message_room_seq_unique" in names


@pytest.mark.kafka
def test_status_shows_the_backend_the_documents_and_the_lag(make_user, make_room):
    me = make_user()
    store(make_room(owner=me), me, "one", "two")
    call_command("search_rebuild", stdout=io.StringIO(), stderr=io.StringIO())
    out = io.StringIO()

    call_command("search_status", "--json", stdout=out)

    status = json.loads(out.getvalue())
    assert (status["backend"], status["documents"]) == ("postgres", 2)
    assert set(status["lag"]) == {"chat-index", "chat-persist"}, status["lag_error"]
    assert all(isinstance(n, int) and n >= 0 for n in status["lag"].values())
    text = io.StringIO()
    call_command("search_status", stdout=text)
    assert "backend: postgres; documents: 2" in text.getvalue() and "lag: chat-index" in text.getvalue()


@pytest.mark.kafka
def test_the_admin_shows_the_index_and_its_lag_not_its_rows(admin_client, make_user, make_room):
    me = make_user()
    store(make_room(owner=me), me, "one", "two", "three")
    call_command("search_rebuild", stdout=io.StringIO(), stderr=io.StringIO())

    page = admin_client.get("/admin/search/messagedoc/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "Search index" in text and "postgres" in text
    assert '<th scope="row">Documents</th><td>3</td>' in text
    assert "chat-index behind the topic" in text
    assert admin_client.get("/admin/search/messagedoc/add/").status_code == 403


def test_the_admin_page_is_for_staff_with_the_permission(client, make_user):
    user = make_user()
    user.is_staff = True
    user.save()
    client.force_login(user)
    assert client.get("/admin/search/messagedoc/").status_code == 403
