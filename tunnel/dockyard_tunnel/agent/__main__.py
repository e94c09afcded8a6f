import sys

from dockyard_tunnel.agent.cli import main

sys.exit(main())
