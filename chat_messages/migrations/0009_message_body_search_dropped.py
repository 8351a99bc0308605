"""The message table's full-text GIN index goes: search has its own index (the search app).

Maintaining it was the largest single cost of storing a message (20 of 43 µs per row), paid in
the persist transaction. Dropped CONCURRENTLY so that the persistence consumer's inserts are not
blocked; the reverse builds it again the same way. Run ``manage.py search_rebuild`` once after
this migration on a database that has messages (docs/search.md, "Upgrading").
"""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("chat_messages", "0008_message_attachments"),
    ]

    operations = [
        migrations.RunSQL(
            sql="DROP INDEX CONCURRENTLY IF EXISTS message_body_search_idx",
            reverse_sql=(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS message_body_search_idx "
                "ON chat_messages_message USING gin (to_tsvector('simple'::regconfig, body))"
            ),
        ),
    ]
