"""The trigger outbox goes: change capture reads the write-ahead log (backup/capture.py).

Each captured write used to insert a JSON copy of its rows into ``backup_changeevent`` in the same
transaction (14 % of durable ingest with a backup configured). The WAL is written anyway; a
logical replication slot decoded by pgoutput gives the same changes at no cost to the write path.

Upgrading: stop the web processes and drain (``manage.py drain`` waits for the outbox to be
published), then migrate; ``capture_changes`` then creates the slot with a snapshot of every
captured row, which the backup applies over what it has (idempotently).
"""

from django.db import migrations, models

TABLES = (
    "accounts_user",
    "rooms_room",
    "rooms_participant",
    "chat_messages_message",
    "chat_messages_reaction",
    "drawer_savedmessage",
    "attachments_attachment",
    "attachments_attachmenthold",
)


def triggers_drop(apps, schema_editor):
    if schema_editor.connection.alias != "default":
        return
    for table in TABLES:
        for op in ("insert", "update", "delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS backup_capture_{op} ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS backup_capture_rows()")


class Migration(migrations.Migration):
    dependencies = [
        ("backup", "0003_capture_attachments"),
    ]

    operations = [
        # No way back: the outbox's triggers are not recreated (capture from the WAL replaces them).
        migrations.RunPython(triggers_drop, migrations.RunPython.noop),
        migrations.DeleteModel(name="ChangeEvent"),
        # PostgreSQL's own view, unmanaged (nothing is created): the admin's "Change capture" page.
        migrations.CreateModel(
            name="ReplicationSlot",
            fields=[
                ("slot_name", models.TextField(primary_key=True, serialize=False)),
                ("plugin", models.TextField(null=True)),
                ("database", models.TextField(null=True)),
                ("active", models.BooleanField()),
            ],
            options={
                "verbose_name": "change capture",
                "verbose_name_plural": "change capture",
                "db_table": "pg_replication_slots",
                "managed": False,
            },
        ),
    ]
