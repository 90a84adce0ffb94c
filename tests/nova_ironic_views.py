"""Run inside the nova 34 virtualenv: Nova's own IronicDriver, once per compute host.

    python nova_ironic_views.py HOST1.conf HOST2.conf ...

Each file is one compute service's nova.conf ([DEFAULT] host, [database]
connection, [ironic] settings, service_down_time). For each, the driver is
built with exactly that configuration and ``get_available_nodes(refresh=True)``
is called once. Prints one JSON object: host -> sorted node UUIDs, or
{"error": "<exception class>"} when the driver refuses (InvalidPeerList).
"""

import json
import logging
import sys

from nova import config, objects
from nova.virt.ironic import driver as ironic_driver

CONF = config.CONF


def main(files):
    logging.disable(logging.CRITICAL)
    objects.register_all()
    views = {}
    for position, path in enumerate(files):
        if position == 0:
            config.parse_args(["nova-compute", "--config-file", path], init_rpc=False,
                              default_config_files=[])
        else:
            CONF.clear()
            CONF(["--config-file", path], project="nova", default_config_files=[])
        driver = ironic_driver.IronicDriver(virtapi=None)
        try:
            views[CONF.host] = sorted(driver.get_available_nodes(refresh=True))
        except Exception as exc:  # the driver's refusal is the answer
            views[CONF.host] = {"error": type(exc).__name__}
    print(json.dumps(views))


if __name__ == "__main__":
    main(sys.argv[1:])
