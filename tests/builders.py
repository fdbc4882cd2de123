"""Fluent builders for Pod and Node JSON, shared by unit and e2e tests."""

from __future__ import annotations

import copy
from typing import Any

JSON = dict[str, Any]


class PodBuilder:
    def __init__(self, name: str) -> None:
        self.obj: JSON = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"containers": [{"name": "c", "image": "registry.invalid/pause"}]},
        }

    def namespace(self, ns: str) -> PodBuilder:
        self.obj["metadata"]["namespace"] = ns
        return self

    def scheduler(self, name: str) -> PodBuilder:
        self.obj["spec"]["schedulerName"] = name
        return self

    def req(self, **resources: str) -> PodBuilder:
        requests = {k.replace("_", "-"): v for k, v in resources.items()}
        self.obj["spec"]["containers"][0]["resources"] = {"requests": requests}
        return self

    def node_selector(self, **labels: str) -> PodBuilder:
        self.obj["spec"]["nodeSelector"] = labels
        return self

    def required_affinity(self, key: str, op: str, *values: str) -> PodBuilder:
        term = {"matchExpressions": [{"key": key, "operator": op, "values": list(values)}]}
        self.obj["spec"].setdefault("affinity", {})["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
        return self

    def preferred_affinity(self, weight: int, key: str, op: str, *values: str) -> PodBuilder:
        node_affinity = self.obj["spec"].setdefault("affinity", {}).setdefault("nodeAffinity", {})
        node_affinity.setdefault("preferredDuringSchedulingIgnoredDuringExecution", []).append(
            {
                "weight": weight,
                "preference": {
                    "matchExpressions": [{"key": key, "operator": op, "values": list(values)}]
                },
            }
        )
        return self

    def toleration(
        self, key: str, value: str = "", effect: str = "NoSchedule", operator: str = "Equal"
    ) -> PodBuilder:
        self.obj["spec"].setdefault("tolerations", []).append(
            {"key": key, "operator": operator, "value": value, "effect": effect}
        )
        return self

    def priority(self, value: int) -> PodBuilder:
        self.obj["spec"]["priority"] = value
        return self

    def gate(self, name: str) -> PodBuilder:
        self.obj["spec"].setdefault("schedulingGates", []).append({"name": name})
        return self

    def node(self, name: str) -> PodBuilder:
        self.obj["spec"]["nodeName"] = name
        return self

    def nominated(self, name: str) -> PodBuilder:
        """status.nominatedNodeName (upstream's `NominatedNodeName(name)`)."""
        self.obj.setdefault("status", {})["nominatedNodeName"] = name
        return self

    def containers(self, *requests: dict[str, str]) -> PodBuilder:
        """Replace the containers: one per mapping of requests ({} = no requests at all);
        no argument leaves the pod without containers (upstream's bare `MakePod().Obj()`)."""
        self.obj["spec"]["containers"] = [
            {"name": f"c{i}", "image": "registry.invalid/pause"}
            | ({"resources": {"requests": dict(r)}} if r else {})
            for i, r in enumerate(requests)
        ]
        return self

    def init_container(self, requests: dict[str, str], *, sidecar: bool = False) -> PodBuilder:
        """Append an init container; `sidecar=True` makes it restartable (restartPolicy Always)."""
        inits = self.obj["spec"].setdefault("initContainers", [])
        container: JSON = {"name": f"init{len(inits)}", "image": "registry.invalid/pause"}
        if requests:
            container["resources"] = {"requests": dict(requests)}
        if sidecar:
            container["restartPolicy"] = "Always"
        inits.append(container)
        return self

    def container_ports(self, *ports: JSON) -> PodBuilder:
        """Set the first container's ports (upstream's `ContainerPort(...)`)."""
        self.obj["spec"]["containers"][0]["ports"] = copy.deepcopy(list(ports))
        return self

    def init_container_ports(self, *ports: JSON, sidecar: bool = False) -> PodBuilder:
        """Append an init container with these ports; `sidecar=True` makes it restartable
        (upstream's `InitContainerPort(sidecar, ...)`)."""
        self.init_container({}, sidecar=sidecar)
        self.obj["spec"]["initContainers"][-1]["ports"] = copy.deepcopy(list(ports))
        return self

    def resource_claim(self, name: str, *, claim: str = "", template: str = "") -> PodBuilder:
        """Append a spec.resourceClaims entry naming a ResourceClaim or, with `template`, a
        ResourceClaimTemplate (upstream's `PodResourceClaims(...)`)."""
        entry: JSON = {"name": name}
        if template:
            entry["resourceClaimTemplateName"] = template
        else:
            entry["resourceClaimName"] = claim or name
        self.obj["spec"].setdefault("resourceClaims", []).append(entry)
        return self

    def overhead(self, **resources: str) -> PodBuilder:
        self.obj["spec"]["overhead"] = {k.replace("_", "-"): v for k, v in resources.items()}
        return self

    def pod_requests(self, requests: dict[str, str]) -> PodBuilder:
        """Pod-level requests (spec.resources.requests, PodLevelResources), as upstream's
        `PodLevelResourceRequests(...)`."""
        self.obj["spec"].setdefault("resources", {})["requests"] = dict(requests)
        return self

    def container_status(
        self,
        name: str,
        *,
        allocated: dict[str, str] | None = None,
        actual: dict[str, str] | None = None,
        init: bool = False,
    ) -> PodBuilder:
        """Append a container status as a kubelet reports an in-place resize: what the node
        allocated (allocatedResources) and what is actuated (resources.requests); None leaves
        the field out. `init=True` appends to initContainerStatuses."""
        entry: JSON = {"name": name}
        if allocated is not None:
            entry["allocatedResources"] = dict(allocated)
        if actual is not None:
            entry["resources"] = {"requests": dict(actual)}
        field = "initContainerStatuses" if init else "containerStatuses"
        self.obj.setdefault("status", {}).setdefault(field, []).append(entry)
        return self

    def pod_status_resources(
        self, *, allocated: dict[str, str] | None = None, actual: dict[str, str] | None = None
    ) -> PodBuilder:
        """The pod-level status of a resize (InPlacePodLevelResourcesVerticalScaling):
        status.allocatedResources and status.resources.requests."""
        status = self.obj.setdefault("status", {})
        if allocated is not None:
            status["allocatedResources"] = dict(allocated)
        if actual is not None:
            status["resources"] = {"requests": dict(actual)}
        return self

    def condition(self, kind: str, reason: str = "", status: str = "True") -> PodBuilder:
        """Append a pod condition, e.g. ("PodResizePending", "Infeasible")."""
        self.obj.setdefault("status", {}).setdefault("conditions", []).append(
            {"type": kind, "status": status, "reason": reason}
        )
        return self

    def node_affinity(self, node_affinity: JSON) -> PodBuilder:
        """Set spec.affinity.nodeAffinity verbatim (for terms the shortcuts cannot express)."""
        self.obj["spec"].setdefault("affinity", {})["nodeAffinity"] = copy.deepcopy(node_affinity)
        return self

    def pod_affinity_term(
        self, term: JSON, *, anti: bool = False, weight: int | None = None
    ) -> PodBuilder:
        """Append a raw PodAffinityTerm to podAffinity (anti=True: podAntiAffinity); required
        when `weight` is None, else preferred with that weight."""
        kind = "podAntiAffinity" if anti else "podAffinity"
        affinity = self.obj["spec"].setdefault("affinity", {}).setdefault(kind, {})
        if weight is None:
            affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", []).append(
                copy.deepcopy(term)
            )
        else:
            affinity.setdefault("preferredDuringSchedulingIgnoredDuringExecution", []).append(
                {"weight": weight, "podAffinityTerm": copy.deepcopy(term)}
            )
        return self

    def pod_affinity(
        self,
        key: str,
        op: str,
        topology_key: str,
        *values: str,
        anti: bool = False,
        weight: int | None = None,
    ) -> PodBuilder:
        """A one-expression term, as upstream's PodAffinityIn / NotIn / Exists helpers."""
        expression: JSON = {"key": key, "operator": op}
        if values:
            expression["values"] = list(values)
        term = {"labelSelector": {"matchExpressions": [expression]}, "topologyKey": topology_key}
        return self.pod_affinity_term(term, anti=anti, weight=weight)

    def uid(self, uid: str) -> PodBuilder:
        self.obj["metadata"]["uid"] = uid
        return self

    def label(self, key: str, value: str = "") -> PodBuilder:
        self.obj["metadata"].setdefault("labels", {})[key] = value
        return self

    def spread(
        self,
        max_skew: int,
        key: str,
        when: str = "DoNotSchedule",
        selector: JSON | None = None,
        *,
        min_domains: int | None = None,
        node_affinity_policy: str | None = None,
        node_taints_policy: str | None = None,
        match_label_keys: list[str] | None = None,
    ) -> PodBuilder:
        """Append a topologySpreadConstraint (upstream's `SpreadConstraint(...)`); selector
        None leaves labelSelector unset (which matches no pod)."""
        constraint: JSON = {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when}
        optional = {
            "labelSelector": copy.deepcopy(selector),
            "minDomains": min_domains,
            "nodeAffinityPolicy": node_affinity_policy,
            "nodeTaintsPolicy": node_taints_policy,
            "matchLabelKeys": match_label_keys,
        }
        constraint.update({k: v for k, v in optional.items() if v is not None})
        self.obj["spec"].setdefault("topologySpreadConstraints", []).append(constraint)
        return self

    def owner(self, kind: str, name: str, api_version: str = "apps/v1") -> PodBuilder:
        """A controller ownerReference."""
        self.obj["metadata"].setdefault("ownerReferences", []).append(
            {
                "apiVersion": api_version,
                "kind": kind,
                "name": name,
                "uid": f"uid-{name}",
                "controller": True,
            }
        )
        return self

    def terminating(self) -> PodBuilder:
        self.obj["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        return self

    def host_network(self, enabled: bool = True, *, host_users: bool | None = None) -> PodBuilder:
        """spec.hostNetwork; `host_users` sets spec.hostUsers (None leaves it unset)."""
        self.obj["spec"]["hostNetwork"] = enabled
        if host_users is not None:
            self.obj["spec"]["hostUsers"] = host_users
        return self

    def restart_rule(self, action: str, *, init: bool = False) -> PodBuilder:
        """Add a restartPolicyRules entry (on exit code 42) to the first app container, or with
        `init` to a new init container."""
        if init:
            self.init_container({})
            container = self.obj["spec"]["initContainers"][-1]
        else:
            container = self.obj["spec"]["containers"][0]
        rule = {"action": action, "exitCodes": {"operator": "In", "values": [42]}}
        container.setdefault("restartPolicyRules", []).append(rule)
        return self

    def volume_mount(
        self, volume: str, *bind_mount_options: str, field: str = "containers"
    ) -> PodBuilder:
        """Mount `volume` at /mnt/<volume> in the first container of `field` (containers,
        initContainers or ephemeralContainers; one is added if there is none), with these
        bindMountOptions."""
        containers = self.obj["spec"].setdefault(field, [])
        if not containers:
            containers.append({"name": f"{field}0", "image": "registry.invalid/pause"})
        mount: JSON = {"name": volume, "mountPath": f"/mnt/{volume}"}
        if bind_mount_options:
            mount["bindMountOptions"] = list(bind_mount_options)
        containers[0].setdefault("volumeMounts", []).append(mount)
        return self

    def obj_(self) -> JSON:
        return copy.deepcopy(self.obj)

    def for_api(self) -> JSON:
        """Without the fields the API server sets itself."""
        out = self.obj_()
        out["metadata"].pop("uid", None)
        out["metadata"].pop("namespace", None)
        return out


def make_pod(name: str) -> PodBuilder:
    return PodBuilder(name)


class NodeBuilder:
    def __init__(self, name: str) -> None:
        resources = {"cpu": "4", "memory": "16Gi", "pods": "110"}
        self.obj: JSON = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {
                "capacity": dict(resources),
                "allocatable": dict(resources),
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }

    def labels(self, **labels: str) -> NodeBuilder:
        self.obj["metadata"]["labels"].update({k.replace("__", "/"): v for k, v in labels.items()})
        return self

    def label(self, key: str, value: str) -> NodeBuilder:
        self.obj["metadata"]["labels"][key] = value
        return self

    def capacity(self, **resources: str) -> NodeBuilder:
        for k, v in resources.items():
            self.obj["status"]["capacity"][k.replace("_", "-")] = v
            self.obj["status"]["allocatable"][k.replace("_", "-")] = v
        return self

    def taint(self, key: str, value: str = "", effect: str = "NoSchedule") -> NodeBuilder:
        self.obj["spec"].setdefault("taints", []).append(
            {"key": key, "value": value, "effect": effect}
        )
        return self

    def unschedulable(self) -> NodeBuilder:
        self.obj["spec"]["unschedulable"] = True
        return self

    def resources(self, resources: dict[str, str]) -> NodeBuilder:
        """Capacity and allocatable exactly `resources` (no default cpu/memory/pods), as
        upstream's `MakeNode().Capacity(...)`; names may contain '/' (extended resources)."""
        self.obj["status"]["capacity"] = dict(resources)
        self.obj["status"]["allocatable"] = dict(resources)
        return self

    def zone(self, zone: str, region: str | None = None) -> NodeBuilder:
        self.obj["metadata"]["labels"]["topology.kubernetes.io/zone"] = zone
        if region is not None:
            self.obj["metadata"]["labels"]["topology.kubernetes.io/region"] = region
        return self

    def declared_features(self, *names: str) -> NodeBuilder:
        """status.declaredFeatures, as given (upstream's `DeclaredFeatures([]string{...})`)."""
        self.obj["status"]["declaredFeatures"] = list(names)
        return self

    def obj_(self) -> JSON:
        return copy.deepcopy(self.obj)


def make_node(name: str) -> NodeBuilder:
    return NodeBuilder(name)
