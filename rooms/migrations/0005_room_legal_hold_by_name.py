# Who set a legal hold becomes their username: a link to the account cost every account deletion
# one more query (SET NULL on rooms) and lost the name when the account went.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rooms", "0004_room_retention_legal_hold"),
    ]

    operations = [
        migrations.RemoveField(model_name="room", name="legal_hold_by"),
        migrations.AddField(
            model_name="room",
            name="legal_hold_by",
            field=models.CharField(blank=True, db_default="", default="", editable=False, max_length=150),
        ),
    ]
