"""The test cluster's kubelet: nodes with GPUs on paper, pods as local processes.

Layout: ``config`` (nodes, image map, timings), ``agent`` (watch, wiring), ``nodes`` (Node
objects and Leases), ``pods`` (one worker per pod), ``podstatus`` (phase and conditions),
``containers`` (process, state, probes), ``images``, ``env`` and ``volumes`` (what a container
runs and sees), ``network`` (netns + veth per pod), ``sandbox`` (the stdlib-only shim that
enters namespaces and execs), ``dns`` (cluster DNS), ``proxy`` (the ``kubernetes`` Service),
``storage`` (hostPath provisioner), ``kubeletapi`` (container logs for ``kubectl logs``).

Not supported: ``kubectl exec/attach/port-forward``, Service ClusterIPs (DNS returns endpoint
IPs instead), resource limits enforcement, ConfigMap/Secret volume updates after start,
preStop/postStart hooks, ``logs --previous``.

Conventions tests can rely on: container logs are appended to
``<state>/logs/<namespace>_<pod>_<container>.log``; pod IPs are ``10.X.(node+1).k`` with one
network namespace per pod; ``containerID`` is ``kubetune://<pid>``; images map to commands
through :class:`~kubetune.testing.nodeagent.config.ImageRule` (unmapped -> ``ErrImagePull``).
"""

from kubetune.testing.nodeagent.config import AgentConfig, ImageRule, NodeSpec, default_images, default_nodes

__all__ = ["AgentConfig", "ImageRule", "NodeSpec", "default_images", "default_nodes"]
