"""Run cinder-api + cinder-scheduler + cinder-volume + cinder-backup in ONE
Python process, the services talking over oslo.messaging's in-process
'fake' transport (as cinder/tests/functional does).

usage: python cinderstack.py --config-file cinder.conf

The project's copy of shared/tools/realstack/cinderstack.py, for
tests/interop/runbook.sh. Why the fake transport: the four services need
RPC between them; an in-process queue needs no RabbitMQ (nothing to install
or start, nothing listening) and runs the same RPC API code; the cost is
that the four services share one process, so they die and restart together,
which is what the harness wants for a fresh state per scenario.

Everything is stock Cinder code (the same Service / WSGIService objects the
cinder-* console scripts build) with these harness-only pieces:
  * the volume backend is realstack_driver.FileVolumeDriver (raw files);
  * NFSBackupDriver._init_backup_repo_path returns [realstack]
    backup_share_dir instead of mounting CONF.backup_share (no NFS server
    here), exactly as tests/interop/cinderlab.py does;
  * Service.report_state heartbeats each service's own row (see main);
  * os-brick's connector properties are answered without sudo (see main).
"""
from cinder import monkey_patch; monkey_patch.patch()  # noqa

import logging as python_logging  # noqa: I100
import os
import shlex
import sys
import time

import os_brick
from oslo_config import cfg
from oslo_log import log as logging
from oslo_privsep import priv_context
from oslo_service import service as os_service

from cinder.common import config  # noqa
from cinder.common import constants
from cinder import i18n
i18n.enable_lazy()
from cinder import coordination  # noqa: E402
from cinder import objects  # noqa: E402
from cinder import rpc  # noqa: E402
from cinder import service  # noqa: E402
from cinder import utils  # noqa: E402
from cinder import version  # noqa: E402
from cinder.cmd import backup as _backup_cmd  # noqa: E402,F401 (backup_max_operations)

CONF = cfg.CONF
CONF.register_opts([
    cfg.StrOpt('backup_share_dir',
               help='Directory used as the mounted NFS backup share.'),
], group='realstack')


def main():
    t0 = time.time()
    objects.register_all()
    CONF(sys.argv[1:], project='cinder', version=version.version_string())
    config.set_middleware_defaults()
    logging.setup(CONF, 'cinder')
    python_logging.captureWarnings(True)
    LOG = logging.getLogger('realstack')
    priv_context.init(root_helper=shlex.split(utils.get_root_helper()))
    utils.monkey_patch()
    os_brick.setup(CONF)

    share = CONF.realstack.backup_share_dir
    from cinder.backup.drivers import nfs
    nfs.NFSBackupDriver._init_backup_repo_path = lambda self: share
    LOG.info('realstack: NFS backup driver uses %s (no mount)', share)

    # cinder.service.Service keeps service_id as a CLASS attribute (one
    # service per process by design) and report_state() heartbeats the row
    # Service.service_id: with several services in one process only the last
    # started one would stay "up". Point it at this service's own row first.
    _orig_report_state = service.Service.report_state

    def report_state(self):
        service.Service.service_id = self.origin_service_id
        return _orig_report_state(self)
    service.Service.report_state = report_state

    # os-brick's get_connector_properties() (called by the backup manager
    # before attaching the restore target) starts a privsep daemon through
    # `sudo cinder-rootwrap` for the NVMe-oF connector; this host has no sudo
    # / rootwrap setup. The file driver ignores the connector, so hand the
    # backup manager a minimal local connector instead.
    import platform
    from cinder.volume import volume_utils

    def brick_get_connector_properties(multipath=False,
                                       enforce_multipath=False):
        return {'platform': platform.machine(), 'os_type': sys.platform,
                'ip': CONF.my_ip, 'host': CONF.host, 'multipath': False,
                'enforce_multipath': False}
    volume_utils.brick_get_connector_properties = \
        brick_get_connector_properties

    coordination.COORDINATOR.start()
    rpc.init(CONF)

    launcher = os_service.ServiceLauncher(CONF, restart_method='mutate')
    servers = []
    # order as a deployment would bring them up: volume, scheduler, backup, api
    for backend in filter(None, CONF.enabled_backends):
        host = '%s@%s' % (CONF.host, backend)
        servers.append(service.Service.create(
            host=host, service_name=backend,
            binary=constants.VOLUME_BINARY, coordination=True))
    servers.append(service.Service.create(binary='cinder-scheduler'))
    semaphore = utils.semaphore_factory(CONF.backup_max_operations, 1)
    servers.append(service.Service.create(
        binary='cinder-backup', coordination=True, service_name='backup',
        process_number=1, semaphore=semaphore))
    servers.append(service.WSGIService('osapi_volume'))
    for s in servers:
        launcher.launch_service(s)
    LOG.info('realstack: %d services launched in %.1fs', len(servers),
             time.time() - t0)
    launcher.wait()
    rpc.cleanup()


if __name__ == '__main__':
    main()
