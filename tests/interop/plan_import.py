"""Carry out a `cbr plan --format json` plan against one fresh Cinder (real
API + manager code, sqlite database, NFS driver over a local share
directory), step by step in the plan's order, and judge each step.

usage: python plan_import.py SHARE_DIR PLAN_JSON MANIFEST_JSON DETAIL_OUT

For each step, as `openstack --os-project-id TARGET volume backup record
import SERVICE URL` would: a request context scoped to the step's
target_project (an admin's token scoped to that project: import is
admin-only by Cinder's default policy) imports backup_url with
backup_service.  Then checks:
  - the step's commands.import is that same call (project, service, url);
  - an incremental's parent (depends_on) is already in this Cinder, under the
    same project, before the import (plan order never hits a missing parent;
    Cinder itself does not check the parent at import), and Cinder stored it
    as parent_id;
  - Cinder stored the backup under target_project (and target_user, when the
    plan names one): a member context of the target project sees it, one of
    the source project does not;
  - the backup, restored by the real NFS driver into a new volume of the
    target project, has the manifest's volume_sha256.
Prints one line per step, "ok LABEL" or "FAIL LABEL: reasons"; the facts
behind each verdict go to DETAIL_OUT as JSON.
"""
import base64
import json
import os
import shlex
import sys
import traceback
import uuid

import cinderlab  # noqa: F401  (sets up config and objects)
from cinderlab import GiB, sha256_file, target_cinder

# The user behind `openstack` when the plan names no target_user.
OPERATOR_USER = "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e"


def main():
    share, plan_path, manifest_path, detail_path = sys.argv[1:5]
    plan = json.load(open(plan_path))
    want_sha = {b["id"]: b["volume_sha256"]
                for b in json.load(open(manifest_path))["backups"]}
    work, api, mgr = target_cinder(share, "cinder-plan-target-")
    from cinder import context, exception, objects
    from cinder.backup.drivers import nfs
    from cinder.db import api as db
    from cinder.objects import fields

    def ctx(project, user, admin):
        c = context.RequestContext(user_id=user, project_id=project,
                                   is_admin=admin)
        c.authorize = lambda *a, **k: True
        return c

    def visible(c, bid):
        try:
            objects.Backup.get_by_id(c, bid)
            return True
        except exception.BackupNotFound:
            return False

    admin = context.get_admin_context()
    vtype = db.volume_type_create(admin, {"name": "target-type"})

    imported = {}  # backup id -> target project, in import order
    details = []
    for n, step in enumerate(plan["steps"], 1):
        bid = step["backup_id"]
        tp = step["target_project"]
        tu = step.get("target_user") or OPERATOR_USER
        dep = step.get("depends_on")
        label = "plan step %d %s (%s) into project %s" % (
            n, bid, "incremental after %s" % dep if dep else "full", tp)
        d = {"step": n, "backup_id": bid, "target_project": tp,
             "depends_on": dep, "error": None}
        problems = []
        try:
            # The runbook's own import command must be this very call.
            want_cmd = ["openstack", "--os-project-id", tp, "volume",
                        "backup", "record", "import",
                        step["backup_service"], step["backup_url"]]
            got_cmd = shlex.split(step["commands"]["import"])
            if got_cmd != want_cmd:
                problems.append("commands.import is not `openstack "
                                "--os-project-id %s volume backup record "
                                "import SERVICE URL`: %r" % (tp, got_cmd[:8]))
            rec = json.loads(base64.b64decode(step["backup_url"]))
            d["record_project_id"] = rec.get("project_id")
            d["record_parent_id"] = rec.get("parent_id")
            if rec.get("id") != bid:
                problems.append("backup_url holds id %s" % rec.get("id"))
            if rec.get("project_id") != tp:
                problems.append("backup_url's project_id is %s, not the "
                                "target project" % rec.get("project_id"))
            if (rec.get("parent_id") or None) != dep:
                problems.append("backup_url's parent_id %s is not depends_on"
                                % rec.get("parent_id"))
            if dep:
                d["parent_before_import"] = imported.get(dep)
                if dep not in imported:
                    problems.append("MISSING PARENT: %s not imported before "
                                    "this step" % dep)
                elif imported[dep] != tp:
                    problems.append("parent %s went to project %s"
                                    % (dep, imported[dep]))
                elif not visible(ctx(tp, tu, False), dep):
                    problems.append("parent %s not visible in project %s"
                                    % (dep, tp))

            c = ctx(tp, tu, True)
            b = api._get_import_backup(c, step["backup_url"])
            mgr.import_record(c, b, step["backup_service"],
                              step["backup_url"], [])
            b = objects.Backup.get_by_id(c, b.id)
            d.update(status=b.status, stored_project=b.project_id,
                     stored_user=b.user_id, stored_parent=b.parent_id,
                     service=b.service, size=b.size)
            if b.status != fields.BackupStatus.AVAILABLE:
                problems.append("status %s after import" % b.status)
            if b.project_id != tp:
                problems.append("Cinder stored project %s" % b.project_id)
            if b.user_id != tu:
                problems.append("Cinder stored user %s, want %s"
                                % (b.user_id, tu))
            if (b.parent_id or None) != dep:
                problems.append("Cinder stored parent_id %s" % b.parent_id)
            d["visible_to_target_member"] = visible(ctx(tp, tu, False), bid)
            d["visible_to_source_member"] = visible(
                ctx(step["source_project"], tu, False), bid)
            if not d["visible_to_target_member"]:
                problems.append("a member of %s cannot see it" % tp)
            if d["visible_to_source_member"] and step["source_project"] != tp:
                problems.append("a member of the source project %s sees it"
                                % step["source_project"])
            imported[bid] = b.project_id

            # Restore into a new volume of the target project.
            vol = str(uuid.uuid4())
            db.volume_create(c, {
                "id": vol, "size": b.size, "status": "restoring",
                "user_id": tu, "project_id": tp,
                "volume_type_id": vtype["id"],
                "display_name": step.get("volume_name") or vol})
            img = os.path.join(work, "restored.img")
            b.status = fields.BackupStatus.RESTORING
            b.save()
            with open(img, "wb") as f:
                f.truncate(b.size * GiB)
            with open(img, "r+b") as f:
                nfs.NFSBackupDriver(c).restore(b, vol, f, True)
            b.status = fields.BackupStatus.AVAILABLE
            b.save()
            d["restored_sha256"] = sha256_file(img)
            os.unlink(img)
            if d["restored_sha256"] != want_sha.get(bid):
                problems.append("restored %s, manifest volume_sha256 %s"
                                % (d["restored_sha256"], want_sha.get(bid)))
        except Exception as e:  # report, don't hide; go on with the plan
            d["error"] = "%s: %s" % (type(e).__name__, e)
            d["trace"] = traceback.format_exc()[-2000:]
            problems.append("Cinder: " + d["error"])
        d["problems"] = problems
        details.append(d)
        if problems:
            print("FAIL %s: %s" % (label, "; ".join(problems)), flush=True)
        else:
            print("ok %s: imported, stored under the project, restored to %s"
                  % (label, d["restored_sha256"]), flush=True)
    json.dump(details, open(detail_path, "w"), indent=1)


if __name__ == "__main__":
    main()
