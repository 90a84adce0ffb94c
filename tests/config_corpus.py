"""Configuration files as deployment tools render them, and what each must resolve to.

Each Case is a small tree of files (paths relative to a temporary directory;
``home/`` is $HOME), the --config-file/--config-dir arguments in order, OS_*
variables, and the values (and sources) expected. tests/test_config_corpus.py
resolves every case with cellctl and with oslo.config itself as the reference,
and once with Nova 34's own configuration objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ConfigArg = tuple[str, str]  # ("file" | "dir", path relative to the case directory)


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, str | bytes]
    args: list[ConfigArg] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    expect: dict[str, Any] = field(default_factory=dict)
    # setting -> "relative/path [group] option" or an OS_* name
    sources: dict[str, str] = field(default_factory=dict)
    # substring of cellctl's one-line error (which must also name error_file)
    error: str | None = None
    error_file: str | None = None
    nova_differs: str | None = None  # why Nova 34's own objects disagree, if they do


KOLLA = """\
[DEFAULT]
debug = False
log_dir = /var/log/kolla/nova
state_path = /var/lib/nova
osapi_compute_listen = 10.0.0.11
transport_url = rabbit://openstack:Kx7%40p%3Aw%2Fx@10.0.0.11:5672,openstack:Kx7%40p%3Aw%2Fx@10.0.0.12:5672,openstack:Kx7%40p%3Aw%2Fx@10.0.0.13:5672//
service_down_time = 120

[api_database]
connection = mysql+pymysql://nova_api:Ab$$cd%25ef@10.0.0.250:3306/nova_api
max_retries = -1

[database]
connection = mysql+pymysql://nova:Q9%23z%21w@10.0.0.250:3306/nova
max_pool_size = 50

[cache]
backend = oslo_cache.memcache_pool
enabled = True
memcache_servers = 10.0.0.11:11211,10.0.0.12:11211,10.0.0.13:11211
"""

OSA = """\
# Ansible managed

[DEFAULT]
# Disable stderr logging
use_stderr = False
my_ip = 172.29.236.100
host = aio1
transport_url = rabbit://nova:0c1d!e:f@aio1-rabbit-mq-container-1:5671,nova:0c1d!e:f@aio1-rabbit-mq-container-2:5671//nova?ssl=1&ssl_version=TLSv1_2
report_interval = 5
service_down_time = 0

[api_database]
connection = mysql+pymysql://nova_api:s3cr3t@172.29.236.101/nova_api?charset=utf8&ssl_verify_cert=true

[database]
connection = mysql+pymysql://nova:s3cr3t@172.29.236.101/nova?charset=utf8&ssl_verify_cert=true
"""

DEVSTACK_NOVA = """\
[DEFAULT]
state_path = /opt/stack/data/nova
my_ip = 10.0.0.5
transport_url = rabbit://stackrabbit:secretrabbit@10.0.0.5:5672/
[api_database]
connection = mysql+pymysql://root:secretdatabase@127.0.0.1/nova_api?charset=utf8
[database]
connection = mysql+pymysql://root:secretdatabase@127.0.0.1/nova_cell0?charset=utf8
[oslo_concurrency]
lock_path = $state_path
"""

DEVSTACK_CELL1 = """\
[DEFAULT]
transport_url = rabbit://stackrabbit:secretrabbit@$my_ip:5672/nova_cell1
[database]
connection = mysql+pymysql://root:secretdatabase@127.0.0.1/nova_cell1?charset=utf8
"""

TRIPLEO = """\
[DEFAULT]
transport_url=rabbit://guest:Zm9v!bar@overcloud-controller-0.internalapi.localdomain:5672,guest:Zm9v!bar@overcloud-controller-1.internalapi.localdomain:5672/?ssl=0
servicegroup_driver=mc
[api_database]
connection=mysql+pymysql://nova_api:p%40ss%3Aw0rd@172.17.0.10/nova_api?read_default_file=/etc/my.cnf.d/tripleo.cnf&read_default_group=tripleo
[database]
connection=mysql+pymysql://nova:p%40ss%3Aw0rd@172.17.0.10/nova?read_default_file=/etc/my.cnf.d/tripleo.cnf&read_default_group=tripleo
[cache]
enabled=True
backend=dogpile.cache.memcached
memcache_servers=inet6:[fd00:fd00:fd00:2000::15]:11211,inet6:[fd00:fd00:fd00:2000::16]:11211
expiration_time=300
"""

HELM = """\
[DEFAULT]
transport_url = "rabbit://nova:pa$$w0rd@rabbitmq-rabbitmq-0.rabbitmq.openstack.svc.cluster.local:5672,nova:pa$$w0rd@rabbitmq-rabbitmq-1.rabbitmq.openstack.svc.cluster.local:5672/nova"
service_down_time = "120"
report_interval = '30'
[api_database]
connection = "mysql+pymysql://nova:p\\$ss@mariadb.openstack.svc.cluster.local:3306/nova_api"
[database]
connection = 'mysql+pymysql://nova:pässwörd@mariadb.openstack.svc.cluster.local:3306/nova'
[cache]
backend = oslo_cache.memcache_pool
enabled = "true"
memcache_servers = "memcached.openstack.svc.cluster.local:11211"
"""

BASE = """\
[DEFAULT]
transport_url = rabbit://base:base@mq:5672/
[api_database]
connection = mysql+pymysql://nova:base@db/nova_api
[database]
connection = mysql+pymysql://nova:base@db/nova
"""

CORPUS: list[Case] = [
    Case("kolla-ansible", {"etc/kolla/nova-api/nova.conf": KOLLA},
         [("file", "etc/kolla/nova-api/nova.conf")],
         expect={
             "transport_url": "rabbit://openstack:Kx7%40p%3Aw%2Fx@10.0.0.11:5672,openstack:"
                              "Kx7%40p%3Aw%2Fx@10.0.0.12:5672,openstack:Kx7%40p%3Aw%2Fx"
                              "@10.0.0.13:5672//",
             "api_database_connection":
                 "mysql+pymysql://nova_api:Ab$cd%25ef@10.0.0.250:3306/nova_api",
             "database_connection": "mysql+pymysql://nova:Q9%23z%21w@10.0.0.250:3306/nova",
             "service_down_time": 120, "cache_enabled": True,
             "cache_backend": "oslo_cache.memcache_pool",
             "cache_memcache_servers": ["10.0.0.11:11211", "10.0.0.12:11211",
                                        "10.0.0.13:11211"],
         },
         sources={"transport_url": "etc/kolla/nova-api/nova.conf [DEFAULT] transport_url",
                  "service_down_time": "etc/kolla/nova-api/nova.conf [DEFAULT] service_down_time",
                  "report_interval": "default"}),
    Case("openstack-ansible", {"etc/nova/nova.conf": OSA}, [("file", "etc/nova/nova.conf")],
         expect={
             "transport_url": "rabbit://nova:0c1d!e:f@aio1-rabbit-mq-container-1:5671,"
                              "nova:0c1d!e:f@aio1-rabbit-mq-container-2:5671//nova?ssl=1"
                              "&ssl_version=TLSv1_2",
             "database_connection": "mysql+pymysql://nova:s3cr3t@172.29.236.101/nova?"
                                    "charset=utf8&ssl_verify_cert=true",
             "service_down_time": 0, "report_interval": 5,
         }),
    Case("devstack-two-files", {"etc/nova/nova.conf": DEVSTACK_NOVA,
                                "etc/nova/nova_cell1.conf": DEVSTACK_CELL1},
         [("file", "etc/nova/nova.conf"), ("file", "etc/nova/nova_cell1.conf")],
         expect={
             # $my_ip from the first file, substituted into the second's value
             "transport_url": "rabbit://stackrabbit:secretrabbit@10.0.0.5:5672/nova_cell1",
             "api_database_connection":
                 "mysql+pymysql://root:secretdatabase@127.0.0.1/nova_api?charset=utf8",
             "database_connection":
                 "mysql+pymysql://root:secretdatabase@127.0.0.1/nova_cell1?charset=utf8",
         },
         sources={"database_connection": "etc/nova/nova_cell1.conf [database] connection",
                  "api_database_connection": "etc/nova/nova.conf [api_database] connection"}),
    Case("tripleo-puppet", {"etc/nova/nova.conf": TRIPLEO}, [("file", "etc/nova/nova.conf")],
         expect={
             "transport_url": "rabbit://guest:Zm9v!bar@overcloud-controller-0.internalapi."
                              "localdomain:5672,guest:Zm9v!bar@overcloud-controller-1."
                              "internalapi.localdomain:5672/?ssl=0",
             "api_database_connection": "mysql+pymysql://nova_api:p%40ss%3Aw0rd@172.17.0.10/"
                                        "nova_api?read_default_file=/etc/my.cnf.d/tripleo.cnf"
                                        "&read_default_group=tripleo",
             "servicegroup_driver": "mc", "cache_backend": "dogpile.cache.memcached",
             "cache_memcache_servers": ["inet6:[fd00:fd00:fd00:2000::15]:11211",
                                        "inet6:[fd00:fd00:fd00:2000::16]:11211"],
             "cache_expiration_time": 300,
         }),
    Case("helm-quoted", {"etc/nova/nova.conf": HELM}, [("file", "etc/nova/nova.conf")],
         expect={
             "transport_url": "rabbit://nova:pa$w0rd@rabbitmq-rabbitmq-0.rabbitmq.openstack."
                              "svc.cluster.local:5672,nova:pa$w0rd@rabbitmq-rabbitmq-1."
                              "rabbitmq.openstack.svc.cluster.local:5672/nova",
             "api_database_connection":
                 "mysql+pymysql://nova:p$ss@mariadb.openstack.svc.cluster.local:3306/nova_api",
             "database_connection":
                 "mysql+pymysql://nova:pässwörd@mariadb.openstack.svc.cluster.local:3306/nova",
             "service_down_time": 120, "report_interval": 30, "cache_enabled": True,
             "cache_memcache_servers": ["memcached.openstack.svc.cluster.local:11211"],
         }),
    Case("distro-drop-ins", {
        "etc/nova/nova.conf": BASE,
        "etc/nova/nova.conf.d/10-database.conf":
            "[database]\nconnection = mysql+pymysql://nova:dropin@db2/nova\n",
        "etc/nova/nova.conf.d/50-cache.conf": "[database]\nmax_retries = 10\n"
                                              "[cache]\nenabled = true\n",
        "etc/nova/nova.conf.d/99-local.conf": "[DEFAULT]\ntransport_url = rabbit://l:l@mq9//\n",
        "etc/nova/nova.conf.d/99-local.conf.rpmsave": "[DEFAULT]\ntransport_url = nope://\n",
        "etc/nova/nova.conf.d/README": "[DEFAULT]\ntransport_url = nope://\n",
    }, [("file", "etc/nova/nova.conf"), ("dir", "etc/nova/nova.conf.d")],
        expect={"database_connection": "mysql+pymysql://nova:dropin@db2/nova",
                "transport_url": "rabbit://l:l@mq9//", "cache_enabled": True,
                "api_database_connection": "mysql+pymysql://nova:base@db/nova_api"},
        # oslo.config's get_location() says 50-cache.conf (the last file with a
        # [database] section): the value is 10-database.conf's
        sources={"database_connection": "etc/nova/nova.conf.d/10-database.conf "
                                        "[database] connection",
                 "transport_url": "etc/nova/nova.conf.d/99-local.conf [DEFAULT] transport_url"}),
    Case("dir-then-file-order", {
        "d/10.conf": "[database]\nconnection = sqlite:////from/dir\n",
        "late.conf": "[database]\nconnection = sqlite:////from/late-file\n",
        "early.conf": BASE,
    }, [("file", "early.conf"), ("dir", "d"), ("file", "late.conf")],
        expect={"database_connection": "sqlite:////from/late-file",
                "transport_url": "rabbit://base:base@mq:5672/"}),
    Case("dir-after-file-wins", {
        "d/10.conf": "[database]\nconnection = sqlite:////from/dir\n",
        "nova.conf": BASE,
    }, [("file", "nova.conf"), ("dir", "d")],
        expect={"database_connection": "sqlite:////from/dir"}),
    Case("state-path-substitution", {"nova.conf": (
        "[DEFAULT]\nstate_path = /var/lib/nova\n"
        "transport_url = rabbit://u:p@${host}:5672/\n"
        "[api_database]\nconnection = sqlite:///$state_path/nova_api.sqlite\n"
        "[database]\nconnection = sqlite:///${state_path}/nova.sqlite\n")},
        [("file", "nova.conf")],
        expect={"api_database_connection": "sqlite:////var/lib/nova/nova_api.sqlite",
                "database_connection": "sqlite:////var/lib/nova/nova.sqlite"}),
    Case("my-ip-default", {"nova.conf": "[DEFAULT]\ntransport_url = rabbit://u:p@$my_ip:5672/\n"},
         [("file", "nova.conf")]),
    Case("escapes", {"nova.conf": (
        "[DEFAULT]\ntransport_url = rabbit://u:pa$$word@mq:5672/\n"
        "[api_database]\nconnection = mysql+pymysql://u:pa\\$word@db/nova_api\n"
        "[database]\nconnection = mysql+pymysql://u:$$$$@db/nova\n")}, [("file", "nova.conf")],
        expect={"transport_url": "rabbit://u:pa$word@mq:5672/",
                "api_database_connection": "mysql+pymysql://u:pa$word@db/nova_api",
                "database_connection": "mysql+pymysql://u:$$@db/nova"}),
    Case("section-names", {"nova.conf": (
        "[DATABASE]\nconnection = mysql+pymysql://u:p@db/nova\n"
        "[API_Database]\nconnection = mysql+pymysql://u:p@db/nova_api\n"
        "[default]\ntransport_url = rabbit://lower-default//\n")}, [("file", "nova.conf")],
        expect={"database_connection": "mysql+pymysql://u:p@db/nova",
                "api_database_connection": "mysql+pymysql://u:p@db/nova_api",
                "transport_url": None}),  # [default] is a section of its own
    Case("ignored-keys", {"nova.conf": (
        "[DEFAULT]\ntransport-url = rabbit://dash//\nService_Down_Time = 5\n"
        "[database]\nConnection = mysql+pymysql://u:p@db/nova\n")}, [("file", "nova.conf")],
        expect={"transport_url": None, "database_connection": None, "service_down_time": 60}),
    Case("repeated-key-last-wins", {"nova.conf": (
        "[database]\nconnection = sqlite:////first\nconnection = sqlite:////second\n")},
        [("file", "nova.conf")], expect={"database_connection": "sqlite:////second"}),
    Case("colon-assignment-and-comments", {"nova.conf": (
        "# comment\n; another\n[database]\n"
        "connection: mysql+pymysql://u:p@db/nova # not a comment\n")},
        [("file", "nova.conf")],
        expect={"database_connection": "mysql+pymysql://u:p@db/nova # not a comment"}),
    Case("environment-source", {"nova.conf": BASE}, [("file", "nova.conf")],
         env={"OS_DATABASE__CONNECTION": "mysql+pymysql://env:env@db/nova",
              "OS_DEFAULT__SERVICE_DOWN_TIME": "45"},
         expect={"database_connection": "mysql+pymysql://env:env@db/nova",
                 "service_down_time": 45,
                 "api_database_connection": "mysql+pymysql://nova:base@db/nova_api"},
         sources={"database_connection": "OS_DATABASE__CONNECTION",
                  "service_down_time": "OS_DEFAULT__SERVICE_DOWN_TIME"}),
    Case("tilde-expansion", {"home/nova.conf": BASE}, [("file", "~/nova.conf")],
         expect={"database_connection": "mysql+pymysql://nova:base@db/nova"},
         sources={"database_connection": "home/nova.conf [database] connection"}),
    Case("default-search-home", {
        "home/.nova/nova.conf": BASE,
        "home/nova.conf": "[database]\nconnection = sqlite:////not-read\n",
        "home/.nova/nova.conf.d/50.conf": "[DEFAULT]\ntransport_url = rabbit://d:d@dropin//\n",
    }, [], expect={"database_connection": "mysql+pymysql://nova:base@db/nova",
                   "transport_url": "rabbit://d:d@dropin//"},
        sources={"database_connection": "home/.nova/nova.conf [database] connection"}),
    Case("default-dirs-read-with-config-file", {
        "nova.conf": BASE,
        "home/.nova/nova.conf.d/50.conf": "[cache]\nenabled = true\n"
                                          "[database]\nconnection = sqlite:////dropin\n",
    }, [("file", "nova.conf")],
        # oslo.config reads the default directories when no --config-dir is given,
        # even beside a --config-file, and before it: the file wins where both say
        expect={"cache_enabled": True,
                "database_connection": "mysql+pymysql://nova:base@db/nova"},
        sources={"cache_enabled": "home/.nova/nova.conf.d/50.conf [cache] enabled"}),
    Case("nova-manage-conf-too", {
        "home/.nova/nova.conf": BASE,
        "home/.nova/nova-manage.conf": "[database]\nconnection = sqlite:////nova-manage\n",
    }, [], expect={"database_connection": "sqlite:////nova-manage"}),
    # --- files oslo.config rejects, cannot read or decode
    Case("indented-key", {"nova.conf": "[database]\n  connection = sqlite:////x\n"},
         [("file", "nova.conf")], error="line 2: Unexpected continuation line",
         error_file="nova.conf"),
    Case("indented-after-blank", {"nova.conf": "[database]\nconnection = a\n\n  b\n"},
         [("file", "nova.conf")], error="line 4: Unexpected continuation line",
         error_file="nova.conf"),
    Case("section-comment", {"nova.conf": "[database]  # the cell\nconnection = a\n"},
         [("file", "nova.conf")], error="line 1: Invalid section", error_file="nova.conf"),
    Case("no-section", {"nova.conf": "connection = a\n"}, [("file", "nova.conf")],
         error="Section must be started", error_file="nova.conf"),
    Case("not-utf8", {"nova.conf": BASE, "d/20.conf": b"[DEFAULT]\n# caf\xe9\n"},
         [("file", "nova.conf"), ("dir", "d")], error="line 2", error_file="d/20.conf"),
    Case("missing-file", {}, [("file", "nope.conf")], error="No such file",
         error_file="nope.conf"),
    Case("missing-dir", {"nova.conf": BASE}, [("file", "nova.conf"), ("dir", "nodir")],
         error="No such file", error_file="nodir"),
    Case("unknown-substitution", {"nova.conf": "[database]\nconnection = mysql://u:pa$word@db\n"},
         [("file", "nova.conf")], error="$word", error_file="nova.conf"),
    Case("bad-integer", {"nova.conf": "[DEFAULT]\nservice_down_time = soon\n"},
         [("file", "nova.conf")], error="service_down_time", error_file="nova.conf"),
    Case("bad-choice", {"nova.conf": "[DEFAULT]\nservicegroup_driver = redis\n"},
         [("file", "nova.conf")], error="servicegroup_driver", error_file="nova.conf"),
    Case("zk-driver", {"nova.conf": "[DEFAULT]\nservicegroup_driver = zk\n"
                                    "[zookeeper]\naddress = 127.0.0.1:2181\n"},
         [("file", "nova.conf")],
         expect={"servicegroup_driver": "zk", "zookeeper_address": "127.0.0.1:2181",
                 "zookeeper_sg_prefix": "/servicegroups", "zookeeper_recv_timeout": 4000},
         nova_differs="Nova 34 has no zk driver and no [zookeeper] group"),
]
