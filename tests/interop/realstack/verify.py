"""What the runbook left behind, judged from Cinder's own database, the
volume files and the fault proxy's log (stdlib only, for runbook.sh).

usage:
  verify.py check LABEL CINDER_DB VOLUME_DIR PROXY_LOG PLAN_JSON MANIFEST
      one line per planned backup: "ok ..." or "FAIL ..."; then one per
      skipped backup. A backup passes when
        * Cinder holds it (not deleted) in the step's target project, available;
        * exactly one volume (not deleted) carries it: its metadata
          cbr-backup=<backup id>, or (the older scripts) its name cbr-<backup id>;
          that volume is in the target project and available;
        * cinder-api accepted (2xx) exactly one POST .../backups/<id>/restore;
        * the volume's file hashes to the manifest's volume_sha256.
      A skipped backup passes when Cinder does not hold it, no volume
      carries it and no request other than GET/HEAD named it.
  verify.py writes PROXY_LOG [FROM]    requests other than GET/HEAD from line FROM (0-based)
  verify.py fired PROXY_LOG            ids of the faults that fired
  verify.py seen PROXY_LOG METHOD REGEX  how many requests matched, forwarded or not
"""
import hashlib
import json
import re
import sqlite3
import sys


def log_lines(path, start=0):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines[start:]:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while True:
            b = f.read(8 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def check(label, db, voldir, proxylog, plan_path, manifest_path):
    plan = json.load(open(plan_path))
    want = {b['id']: b['volume_sha256']
            for b in json.load(open(manifest_path))['backups']}
    con = sqlite3.connect('file:%s?mode=ro' % db, uri=True, timeout=30)
    vols = con.execute('select id, project_id, display_name, status from volumes '
                       'where deleted = 0').fetchall()
    meta = {}
    for vid, key, value in con.execute(
            'select volume_id, key, value from volume_metadata where deleted = 0'):
        meta.setdefault(vid, {})[key] = value
    backups = {r[0]: r[1:] for r in con.execute(
        'select id, project_id, status from backups where deleted = 0')}
    reqs = log_lines(proxylog)
    failed = 0
    for step in plan['steps']:
        bid, target = step['backup_id'], step['target_project']
        problems = []
        b = backups.get(bid)
        if b is None:
            problems.append('Cinder does not hold the backup')
        else:
            if b[0] != target:
                problems.append('backup in project %s, not %s' % (b[0], target))
            if b[1] != 'available':
                problems.append('backup is %s' % b[1])
        mine = [v for v in vols
                if meta.get(v[0], {}).get('cbr-backup') == bid
                or v[2] == 'cbr-%s' % bid]
        restore_re = re.compile(r'/backups/%s/restore$' % re.escape(bid))
        posts = [r for r in reqs if r['method'] == 'POST'
                 and restore_re.search(r['path'].split('?')[0])]
        accepted = [r for r in posts if r['upstream'] and 200 <= r['upstream'] < 300]
        if len(mine) != 1:
            problems.append('%d volumes carry it%s' % (
                len(mine), (' (%s)' % ', '.join('%s %s %s' % (v[0], v[2], v[3])
                                               for v in mine)) if mine else ''))
        if len(accepted) != 1:
            problems.append('restored %d times (%d restore POSTs)'
                            % (len(accepted), len(posts)))
        got = None
        for v in mine[:1]:
            if v[1] != target:
                problems.append('volume %s in project %s' % (v[0], v[1]))
            if v[3] != 'available':
                problems.append('volume %s is %s' % (v[0], v[3]))
            try:
                got = sha256_file('%s/volume-%s' % (voldir, v[0]))
            except OSError as e:
                problems.append('volume file: %s' % e)
        if got is not None and got != want.get(bid):
            problems.append('volume sha256 %s, manifest %s' % (got[:16], str(want.get(bid))[:16]))
        if problems:
            failed += 1
            print('FAIL %s: backup %s -> %s: %s' % (label, bid, target, '; '.join(problems)))
        else:
            print('ok %s: backup %s -> one volume %s in %s, restored once, sha256 %s'
                  % (label, bid, mine[0][0], target, got[:16]))
    for s in plan.get('skipped', []):
        bid = s['backup_id']
        problems = []
        if bid in backups:
            problems.append('Cinder holds it')
        if any(meta.get(v[0], {}).get('cbr-backup') == bid or v[2] == 'cbr-%s' % bid
               for v in vols):
            problems.append('a volume carries it')
        n = sum(1 for r in reqs if bid in r['path'] and r['method'] not in ('GET', 'HEAD'))
        if n:
            problems.append('%d POST/PUT/DELETE requests name it' % n)
        if problems:
            failed += 1
            print('FAIL %s: skipped backup %s touched: %s' % (label, bid, '; '.join(problems)))
        else:
            print('ok %s: skipped backup %s untouched' % (label, bid))
    return 1 if failed else 0


def main():
    cmd = sys.argv[1]
    if cmd == 'check':
        return check(*sys.argv[2:8])
    if cmd == 'writes':
        start = int(sys.argv[3]) if len(sys.argv) > 3 else 0
        for r in log_lines(sys.argv[2], start):
            if r['method'] not in ('GET', 'HEAD'):
                print('%s %s -> %s' % (r['method'], r['path'], r['status']))
        return 0
    if cmd == 'fired':
        for r in log_lines(sys.argv[2]):
            if r['fault']:
                print('%s %s %s (cinder-api: %s, client: %s)' % (
                    r['fault'], r['method'], r['path'], r['upstream'], r['status']))
        return 0
    if cmd == 'seen':
        rx = re.compile(sys.argv[4])
        print(sum(1 for r in log_lines(sys.argv[2])
                  if r['method'] == sys.argv[3] and rx.search(r['path'])))
        return 0
    print('unknown command %s' % cmd, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main())
