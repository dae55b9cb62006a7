"""The fake API server's state: objects with uid, resourceVersion, generation and
managedFields, written through create / replace / patch (apply, merge, strategic, JSON)
/ delete, each with dry-run, exactly as a client sees them over the wire."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from k8sfake import patches
from k8sfake.resources import Invalid, Resource, apply_defaults, validate
from k8sfake.selectors import field_selector, label_selector

Key = tuple[str, str, str]  # (plural.group, namespace, name)

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ApiError(Exception):
    """An error answered as a metav1.Status."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{resource.group_resource} "{name}" not found',
        {"name": name, "group": resource.group, "kind": resource.plural},
    )


@dataclass
class Owner:
    operation: str  # Apply | Update
    fields: patches.FieldSet
    api_version: str
    time: str


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without server-managed metadata, to tell whether a write changed it."""
    data = copy.deepcopy(obj)
    meta = data.get("metadata", {})
    for key in ("resourceVersion", "managedFields", "generation"):
        meta.pop(key, None)
    return data


def _without_status(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("status", "metadata")}


class Store:
    """Every object, behind one lock (the HTTP threads and the controllers share it)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.objects: dict[Key, dict[str, Any]] = {}
        self.owners: dict[Key, dict[str, Owner]] = {}
        self.kinds: dict[Key, Resource] = {}
        self.namespaces = {"default", "kube-system", "kube-public"}
        self._rv = 1000
        self._ips = 10
        self._node_ports = 30000

    # -- helpers ------------------------------------------------------------------------

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _allocate(self, what: str) -> Any:
        if what == "clusterIP":
            self._ips += 1
            return f"10.96.{self._ips // 250}.{self._ips % 250}"
        self._node_ports += 1
        return self._node_ports

    @staticmethod
    def key(resource: Resource, namespace: str, name: str) -> Key:
        return (
            f"{resource.plural}.{resource.group}",
            namespace if resource.namespaced else "",
            name,
        )

    def render(self, key: Key) -> dict[str, Any]:
        """The object as the API answers it (with managedFields)."""
        obj = copy.deepcopy(self.objects[key])
        owners = self.owners.get(key, {})
        if owners:
            obj["metadata"]["managedFields"] = [
                {
                    "manager": manager,
                    "operation": owner.operation,
                    "apiVersion": owner.api_version or self.kinds[key].api_version,
                    "time": owner.time or now(),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": patches.to_fields_v1(owner.fields),
                }
                for manager, owner in owners.items()
                if owner.fields
            ]
        return obj

    def _check_namespace(self, resource: Resource, namespace: str) -> None:
        if resource.namespaced and namespace not in self.namespaces:
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                {"name": namespace, "kind": "namespaces"},
            )

    # -- reads --------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            key = self.key(resource, namespace, name)
            if key not in self.objects:
                raise not_found(resource, name)
            return self.render(key)

    def list(
        self,
        resource: Resource,
        namespace: str | None,
        labels: str | None = None,
        fields: str | None = None,
    ) -> dict[str, Any]:
        try:
            match_labels = label_selector(labels)
            match_fields = field_selector(fields)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        with self.lock:
            items = []
            for key, obj in sorted(self.objects.items()):
                if self.kinds[key] != resource or (namespace and key[1] != namespace):
                    continue
                if match_labels(obj["metadata"].get("labels") or {}) and match_fields(obj):
                    items.append(self.render(key))
            return {
                "kind": f"{resource.kind}List",
                "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            }

    # -- writes -------------------------------------------------------------------------

    def create(
        self,
        resource: Resource,
        namespace: str,
        body: dict[str, Any],
        manager: str,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        with self.lock:
            self._check_namespace(resource, namespace)
            meta = body.setdefault("metadata", {})
            name = meta.get("name") or ""
            if not name and meta.get("generateName"):
                name = meta["generateName"] + uuid.uuid4().hex[:5]
                meta["name"] = name
            key = self.key(resource, namespace, name)
            if key in self.objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{resource.group_resource} "{name}" already exists',
                    {"name": name, "group": resource.group, "kind": resource.plural},
                )
            fields = patches.fieldset(body)
            return self._commit(
                resource, key, body, None, {manager: Owner("Update", fields, "", "")}, dry_run
            )

    def replace(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        body: dict[str, Any],
        manager: str,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        with self.lock:
            key = self.key(resource, namespace, name)
            if key not in self.objects:
                raise not_found(resource, name)
            old = self.objects[key]
            wanted = body.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {resource.group_resource} "{name}": '
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again",
                    {"name": name, "group": resource.group, "kind": resource.plural},
                )
            if "status" not in body and "status" in old:
                body["status"] = copy.deepcopy(old["status"])
            owners = self._update_owners(key, old, body, manager)
            return self._commit(resource, key, body, old, owners, dry_run)

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        manager: str | None,
        force: bool,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        with self.lock:
            key = self.key(resource, namespace, name)
            old = self.objects.get(key)
            if content_type == APPLY:
                return self._apply(resource, key, namespace, name, body, manager, force, dry_run)
            if force:
                raise ApiError(
                    400, "BadRequest", "force flag must be unset for non-apply patch requests"
                )
            if old is None:
                raise not_found(resource, name)
            try:
                if content_type == MERGE:
                    new = patches.merge_patch(old, body)
                elif content_type == STRATEGIC:
                    if resource.group == "gateway.networking.k8s.io":
                        raise ApiError(
                            415,
                            "UnsupportedMediaType",
                            "the body of the request was in an unknown format - accepted media "
                            "types include: application/json-patch+json, "
                            "application/merge-patch+json, application/apply-patch+yaml",
                        )
                    new = patches.strategic_merge(old, body)
                elif content_type == JSON_PATCH:
                    new = patches.json_patch(old, body)
                else:
                    raise ApiError(
                        415, "UnsupportedMediaType", f"unknown patch type {content_type}"
                    )
            except (patches.PatchError, KeyError, IndexError, ValueError, TypeError) as exc:
                raise ApiError(422, "Invalid", f"the patch could not be applied: {exc}") from None
            owners = self._update_owners(key, old, new, manager or "unknown")
            return self._commit(resource, key, new, old, owners, dry_run)

    def _update_owners(
        self, key: Key, old: dict[str, Any], new: dict[str, Any], manager: str
    ) -> dict[str, Owner]:
        """An Update takes ownership of every field it changed, from everyone else."""
        changed = {
            path
            for path in patches.fieldset(new)
            if patches.get_path(old, path) != patches.get_path(new, path)
        }
        owners = {
            m: Owner(o.operation, set(o.fields), o.api_version, o.time)
            for m, o in self.owners.get(key, {}).items()
        }
        for other, owner in owners.items():
            if other != manager:
                owner.fields -= changed
        mine = owners.get(manager)
        if mine is None or mine.operation != "Update":
            owners[manager] = Owner("Update", changed, "", "")
        else:
            mine.fields |= changed
        return owners

    def _apply(
        self,
        resource: Resource,
        key: Key,
        namespace: str,
        name: str,
        applied: Any,
        manager: str | None,
        force: bool,
        dry_run: bool,
    ) -> dict[str, Any]:
        if not manager:
            raise ApiError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                "is required for apply patch",
            )
        if not isinstance(applied, dict):
            raise ApiError(400, "BadRequest", "apply patch body must be an object")
        if (
            applied.get("kind") != resource.kind
            or applied.get("apiVersion") != resource.api_version
        ):
            raise ApiError(
                400,
                "BadRequest",
                f"the apply patch is for {applied.get('apiVersion')}, Kind="
                f"{applied.get('kind')}, not {resource.api_version}, Kind={resource.kind}",
            )
        applied_name = (applied.get("metadata") or {}).get("name")
        if applied_name != name:
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        applied = {k: v for k, v in applied.items() if k != "status"}
        old = self.objects.get(key)
        if old is None:
            self._check_namespace(resource, namespace)
        new_fields = patches.fieldset(applied)
        owners = {
            m: Owner(o.operation, set(o.fields), o.api_version, o.time)
            for m, o in self.owners.get(key, {}).items()
        }
        live = old or {}
        if not force:
            conflicts = []
            for other, owner in owners.items():
                if other == manager:
                    continue
                for path in sorted(new_fields & owner.fields):
                    if path[-1][0] == "k":  # a list item itself: its leaves decide
                        continue
                    if patches.get_path(live, path) != patches.get_path(applied, path):
                        dotted = "".join(f".{k}" if kind == "f" else f"[{k}]" for kind, k in path)
                        conflicts.append(
                            f'conflict with "{other}" using {resource.api_version}: {dotted}'
                        )
            if conflicts:
                noun = "conflict" if len(conflicts) == 1 else "conflicts"
                raise ApiError(
                    409,
                    "Conflict",
                    f"Apply failed with {len(conflicts)} {noun}: " + "\n".join(conflicts),
                )
        merged = patches.apply_merge(copy.deepcopy(live), applied)
        previous = owners.get(manager)
        others = [o.fields for m, o in owners.items() if m != manager]
        if previous is not None:
            # a whole keyed item first: its key fields removed first would orphan the rest
            for path in sorted(previous.fields - new_fields, key=len):
                if not patches.owned_by_others(path, others):
                    patches.remove_path(merged, path)
        if force:
            for other, owner in owners.items():
                if other != manager:
                    owner.fields -= new_fields
        owners[manager] = Owner("Apply", new_fields, resource.api_version, "")
        return self._commit(resource, key, merged, old, owners, dry_run)

    def _commit(
        self,
        resource: Resource,
        key: Key,
        new: dict[str, Any],
        old: dict[str, Any] | None,
        owners: dict[str, Owner],
        dry_run: bool,
    ) -> dict[str, Any]:
        new = copy.deepcopy(new)
        new["apiVersion"], new["kind"] = resource.api_version, resource.kind
        meta = new.setdefault("metadata", {})
        meta.pop("managedFields", None)
        meta["name"] = key[2]
        if resource.namespaced:
            meta["namespace"] = key[1]
        if old is not None:
            for field in ("uid", "creationTimestamp", "generation", "resourceVersion"):
                meta[field] = old["metadata"][field]
            if "status" in old and "status" not in new:
                new["status"] = copy.deepcopy(old["status"])
        else:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            meta["generation"] = 1
            meta["resourceVersion"] = ""
        try:
            apply_defaults(resource.kind, new, self._allocate)
            validate(resource.kind, new, old)
        except Invalid as exc:
            raise ApiError(
                422,
                "Invalid",
                str(exc),
                {
                    "name": exc.name,
                    "group": resource.group,
                    "kind": resource.kind,
                    "causes": [
                        {"reason": "FieldValueInvalid", "message": m, "field": f}
                        for f, m in exc.causes
                    ],
                },
            ) from None
        stamp = now()
        for owner in owners.values():
            owner.api_version = owner.api_version or resource.api_version
            owner.time = owner.time or stamp
        owners = {m: o for m, o in owners.items() if o.fields}
        if old is not None:
            unchanged = _content(new) == _content(old)
            same_owners = {m: (o.operation, o.fields) for m, o in owners.items()} == {
                m: (o.operation, o.fields) for m, o in self.owners.get(key, {}).items()
            }
            if unchanged and same_owners:
                return self.render(key)
            if _without_status(new) != _without_status(old):
                meta["generation"] = old["metadata"]["generation"] + 1
        if dry_run:
            saved = (self.objects.get(key), self.owners.get(key))
            self.objects[key], self.owners[key] = new, owners
            self.kinds[key] = resource
            try:
                result = self.render(key)
            finally:
                if saved[0] is None:
                    del self.objects[key], self.owners[key]
                else:
                    self.objects[key], self.owners[key] = saved  # type: ignore[assignment]
            return result
        meta["resourceVersion"] = self._next_rv()
        self.objects[key] = new
        self.owners[key] = owners
        self.kinds[key] = resource
        return self.render(key)

    def delete(
        self, resource: Resource, namespace: str, name: str, dry_run: bool = False
    ) -> dict[str, Any]:
        with self.lock:
            key = self.key(resource, namespace, name)
            if key not in self.objects:
                raise not_found(resource, name)
            uid = self.objects[key]["metadata"]["uid"]
            # Services and pods answer with the deleted object (ReturnDeletedObject), the
            # others with a Success Status, as the real registries do.
            deleted = self.render(key) if resource.plural in ("services", "pods") else None
            if not dry_run:
                del self.objects[key]
                self.owners.pop(key, None)
                self.kinds.pop(key, None)
                self._rv += 1
            if deleted is not None:
                return deleted
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": name,
                    "group": resource.group,
                    "kind": resource.plural,
                    "uid": uid,
                },
            }

    # -- for controllers ----------------------------------------------------------------

    def items(self, resource: Resource, namespace: str | None = None) -> list[dict[str, Any]]:
        """The stored objects themselves (callers hold the lock and may mutate via save)."""
        return [
            obj
            for key, obj in self.objects.items()
            if self.kinds[key] == resource and (namespace is None or key[1] == namespace)
        ]

    def put(self, resource: Resource, obj: dict[str, Any], manager: str = "") -> None:
        """Store an object written by a controller (a pod, an event, a status change)."""
        meta = obj["metadata"]
        key = self.key(resource, meta.get("namespace", ""), meta["name"])
        old = self.objects.get(key)
        if old is not None and json.dumps(old, sort_keys=True) == json.dumps(obj, sort_keys=True):
            return
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now())
        meta.setdefault("generation", 1)
        if manager and old is not None:
            self.owners[key] = self._update_owners(key, old, obj, manager)
            if _without_status(obj) != _without_status(old):
                meta["generation"] = old["metadata"]["generation"] + 1
        meta["resourceVersion"] = self._next_rv()
        self.objects[key] = obj
        self.kinds[key] = resource

    def remove(self, resource: Resource, namespace: str, name: str) -> None:
        key = self.key(resource, namespace, name)
        self.objects.pop(key, None)
        self.owners.pop(key, None)
        self.kinds.pop(key, None)
        self._rv += 1


def template_hash(template: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    return "".join(c for c in digest if c in "bcdfghjklmnpqrstvwxz2456789")[:10] or digest[:10]
