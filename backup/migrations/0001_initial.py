from django.db import migrations, models

# The tables captured when this migration was written (backup.tables lists today's; later
# migrations add theirs): a migration must not change with the code that comes after it.
CAPTURED_TABLES = (
    "accounts_user",
    "rooms_room",
    "rooms_participant",
    "chat_messages_message",
    "drawer_savedmessage",
)

FUNCTION = """
CREATE OR REPLACE FUNCTION backup_capture_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO backup_changeevent (table_name, op, row_id, "row", captured_at)
      SELECT TG_TABLE_NAME, 'delete', o.id, NULL, now() FROM old_rows o ORDER BY o.id;
  ELSE
    INSERT INTO backup_changeevent (table_name, op, row_id, "row", captured_at)
      SELECT TG_TABLE_NAME, 'upsert', n.id, to_jsonb(n), now() FROM new_rows n ORDER BY n.id;
  END IF;
  RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER backup_capture_insert AFTER INSERT ON {t}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION backup_capture_rows();
CREATE TRIGGER backup_capture_update AFTER UPDATE ON {t}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION backup_capture_rows();
CREATE TRIGGER backup_capture_delete AFTER DELETE ON {t}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION backup_capture_rows();
"""


def install(apps, schema_editor):
    # Only the primary captures; the backup database gets the tables, not the triggers.
    if schema_editor.connection.alias != "default":
        return
    schema_editor.execute(FUNCTION)
    for table in CAPTURED_TABLES:
        schema_editor.execute(TRIGGERS.format(t=table))


def uninstall(apps, schema_editor):
    if schema_editor.connection.alias != "default":
        return
    for table in CAPTURED_TABLES:
        for op in ("insert", "update", "delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS backup_capture_{op} ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS backup_capture_rows()")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0002_sessions_and_deletions"),
        ("rooms", "0001_initial"),
        ("chat_messages", "0001_initial"),
        ("drawer", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ChangeEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("table_name", models.CharField(max_length=63)),
                ("op", models.CharField(max_length=6)),
                ("row_id", models.BigIntegerField()),
                ("row", models.JSONField(null=True)),
                ("captured_at", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(install, uninstall),
    ]
