"""Make spm_auditlog append-only on PostgreSQL with a trigger.

The trigger rejects every UPDATE and DELETE with two exceptions:
- an UPDATE that only sets actor_id to NULL, which Django issues when the acting
  user is deleted (on_delete=SET_NULL);
- any statement in a transaction that ran `SET LOCAL spm.audit_privileged = 'on'`,
  which only `spm.audit.audit_privileged()` does (retention deletes and the
  deletion of a whole organization).
SQLite has no such trigger; there the model API alone enforces append-only.
"""

from django.db import migrations

CREATE_TRIGGER = """
CREATE OR REPLACE FUNCTION spm_auditlog_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('spm.audit_privileged', true), '') = 'on' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'spm_auditlog is append-only: % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
DROP TRIGGER IF EXISTS spm_auditlog_append_only ON spm_auditlog;
CREATE TRIGGER spm_auditlog_append_only
    BEFORE UPDATE OR DELETE ON spm_auditlog
    FOR EACH ROW EXECUTE FUNCTION spm_auditlog_reject_change();
"""

DROP_TRIGGER = """
DROP TRIGGER IF EXISTS spm_auditlog_append_only ON spm_auditlog;
DROP FUNCTION IF EXISTS spm_auditlog_reject_change();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # No parameters: psycopg would read the % of RAISE as a placeholder.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(CREATE_TRIGGER)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(DROP_TRIGGER)


class Migration(migrations.Migration):
    dependencies = [
        ("spm", "0003_security_privacy_settings"),
    ]

    operations = [
        migrations.RunPython(create_trigger, drop_trigger),
    ]
