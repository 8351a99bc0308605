from django.db import migrations

TRIGGERS = """
CREATE TRIGGER backup_capture_insert AFTER INSERT ON {t}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION backup_capture_rows();
CREATE TRIGGER backup_capture_update AFTER UPDATE ON {t}
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION backup_capture_rows();
CREATE TRIGGER backup_capture_delete AFTER DELETE ON {t}
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION backup_capture_rows();
"""
TABLE = "chat_messages_reaction"


def install(apps, schema_editor):
    # Only the primary captures; the backup database gets the table, not the triggers.
    if schema_editor.connection.alias != "default":
        return
    schema_editor.execute(TRIGGERS.format(t=TABLE))


def uninstall(apps, schema_editor):
    if schema_editor.connection.alias != "default":
        return
    for op in ("insert", "update", "delete"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS backup_capture_{op} ON {TABLE}")


class Migration(migrations.Migration):
    dependencies = [
        ("backup", "0001_initial"),
        ("chat_messages", "0004_reactions"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
