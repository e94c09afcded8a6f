import sys

from dockyard_tunnel.server.cli import main

sys.exit(main())
