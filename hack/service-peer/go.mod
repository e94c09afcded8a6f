module dockyard.dev/hack/service-peer

go 1.26
