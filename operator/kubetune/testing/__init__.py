"""Test infrastructure: a real Kubernetes control plane and a node agent, started from Python.

``cluster.Cluster`` runs etcd, kube-apiserver, kube-controller-manager and kube-scheduler
(built from Go modules by ``hack/build-control-plane.sh``) plus ``nodeagent``, which registers
GPU nodes and runs pods as local processes in their own network and mount namespaces.
``python -m kubetune.testing up|down|status`` does the same from a shell. Test helpers only:
product code never imports this package.
"""

from kubetune.testing.binaries import BinariesNotFound, find_binaries
from kubetune.testing.cluster import Cluster, ClusterError
from kubetune.testing.crds import CrdRejected, CrdReport
from kubetune.testing.waiting import WaitTimeout, wait_for

__all__ = [
    "BinariesNotFound",
    "Cluster",
    "ClusterError",
    "CrdRejected",
    "CrdReport",
    "WaitTimeout",
    "find_binaries",
    "wait_for",
]
