"""Keystone setup for tests/interop/runbook.sh, in one process (the keystone
venv's python-keystoneclient, talking to the running Keystone over HTTP).

usage: python ksetup.py AUTH_URL ADMIN_PASSWORD setup CINDER_URL_TEMPLATE
           creates the projects service, target-a, target-b, the users
           cinder (admin + service on service) and member (member on
           target-a and target-b), gives admin the admin role on target-a
           and target-b, and the volumev3 service with its three endpoints
           at CINDER_URL_TEMPLATE; prints shell lines NAME=id.
       python ksetup.py AUTH_URL ADMIN_PASSWORD grant|revoke PROJECT_NAME
           gives or takes admin's admin role on that project.
Idempotent: what exists is reused.
"""
import sys

from keystoneauth1 import session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client


def main():
    auth_url, password, cmd = sys.argv[1:4]
    auth = v3.Password(auth_url=auth_url, username='admin', password=password,
                       project_name='admin', user_domain_id='default',
                       project_domain_id='default')
    ks = client.Client(session=session.Session(auth=auth))

    def one(manager, name, **create):
        found = manager.list(name=name)
        return found[0] if found else manager.create(name=name, **create)

    admin = ks.users.list(name='admin')[0]
    role_admin = ks.roles.list(name='admin')[0]
    if cmd in ('grant', 'revoke'):
        project = ks.projects.list(name=sys.argv[4])[0]
        if cmd == 'grant':
            ks.roles.grant(role_admin, user=admin, project=project)
        else:
            ks.roles.revoke(role_admin, user=admin, project=project)
        return
    url = sys.argv[4]
    role_member = one(ks.roles, 'member')
    role_service = one(ks.roles, 'service')
    projects = {n: one(ks.projects, n, domain='default')
                for n in ('service', 'target-a', 'target-b')}
    cinder = one(ks.users, 'cinder', domain='default', password='cinder-pass')
    ks.roles.grant(role_admin, user=cinder, project=projects['service'])
    ks.roles.grant(role_service, user=cinder, project=projects['service'])
    member = one(ks.users, 'member', domain='default', password='member-pass')
    for n in ('target-a', 'target-b'):
        ks.roles.grant(role_member, user=member, project=projects[n])
        ks.roles.grant(role_admin, user=admin, project=projects[n])
    svc = [s for s in ks.services.list(type='volumev3')]
    svc = svc[0] if svc else ks.services.create(name='cinderv3', type='volumev3')
    have = {e.interface for e in ks.endpoints.list(service=svc)}
    for interface in ('public', 'internal', 'admin'):
        if interface not in have:
            ks.endpoints.create(service=svc, url=url, interface=interface,
                                region='RegionOne')
    print('TARGET_A=%s' % projects['target-a'].id)
    print('TARGET_B=%s' % projects['target-b'].id)
    print('ADMIN_PROJECT=%s' % ks.projects.list(name='admin')[0].id)


if __name__ == '__main__':
    main()
