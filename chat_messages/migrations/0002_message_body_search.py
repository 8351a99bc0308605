"""A GIN index on to_tsvector('simple', body) for chat_messages/search.py.

Written as SQL: it indexes an expression the search writes out in the same form (see
messages.search.BodyVector), and it is built CONCURRENTLY so that adding it to a large live
table does not block the persistence consumer's inserts.
"""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("chat_messages", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS message_body_search_idx "
                "ON chat_messages_message USING gin (to_tsvector('simple'::regconfig, body))"
            ),
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS message_body_search_idx",
        ),
    ]
