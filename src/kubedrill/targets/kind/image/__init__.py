"""`kubedrill kind image build`: a kind node image made entirely on this machine.

No container registry is reachable here, so nothing is pulled: the base is a Debian root file
system bootstrapped from the machine's own apt mirror, the Kubernetes binaries are compiled from
Go modules, and every image kubeadm asks for is built `FROM scratch` and preloaded into the
node's containerd. Other code calls `node_image(progress)` for the tag and
`kind_binary_path(cache_dir)` for a kind CLI of the pinned version.
"""

from kubedrill.targets.kind.image.binaries import kind_binary_path
from kubedrill.targets.kind.image.node import node_image, node_image_tag

__all__ = ["kind_binary_path", "node_image", "node_image_tag"]
