module dockyard.dev/hack/yamux-peer

go 1.26

require github.com/hashicorp/yamux v0.1.2
