from django.db import migrations

TRIGGERS = """
CREATE TRIGGER backup_capture_insert AFTER INSERT ON {t}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION backup_capture_rows();
CREATE TRIGGER backup_capture_update AFTER UPDATE ON {t}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION backup_capture_rows();
CREATE TRIGGER backup_capture_delete AFTER DELETE ON {t}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION backup_capture_rows();
"""
# The attachments' facts and who keeps them (their files live in the storage, not in the database).
TABLES = ("attachments_attachment", "attachments_attachmenthold")


def install(apps, schema_editor):
    # Only the primary captures; the backup database gets the tables, not the triggers.
    if schema_editor.connection.alias != "default":
        return
    for table in TABLES:
        schema_editor.execute(TRIGGERS.format(t=table))


def uninstall(apps, schema_editor):
    if schema_editor.connection.alias != "default":
        return
    for table in TABLES:
        for op in ("insert", "update", "delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS backup_capture_{op} ON {table}")


class Migration(migrations.Migration):
    dependencies = [
        ("backup", "0002_capture_reactions"),
        ("attachments", "0001_initial"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
