"""kubetune.io/v1alpha1: FineTuneJob, Adapter and ModelDeployment.

``KINDS`` maps each kind name to its model; the CRD generator and ``kubetune validate`` read
it, so a new kind is added here and nowhere else.
"""

from kubetune.api.v1alpha1 import adapter, base, common, finetunejob, modeldeployment
from kubetune.api.v1alpha1.adapter import Adapter, AdapterSpec, AdapterStatus
from kubetune.api.v1alpha1.base import API_VERSION, GROUP, VERSION, Condition, KubeModel, Resource
from kubetune.api.v1alpha1.finetunejob import FineTuneJob, FineTuneJobSpec, FineTuneJobStatus
from kubetune.api.v1alpha1.modeldeployment import ModelDeployment, ModelDeploymentSpec, ModelDeploymentStatus

KINDS: dict[str, type[Resource]] = {
    "FineTuneJob": FineTuneJob,
    "Adapter": Adapter,
    "ModelDeployment": ModelDeployment,
}

__all__ = [
    "API_VERSION",
    "GROUP",
    "KINDS",
    "VERSION",
    "Adapter",
    "AdapterSpec",
    "AdapterStatus",
    "Condition",
    "FineTuneJob",
    "FineTuneJobSpec",
    "FineTuneJobStatus",
    "KubeModel",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "Resource",
    "adapter",
    "base",
    "common",
    "finetunejob",
    "modeldeployment",
]
