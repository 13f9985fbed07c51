"""Granting and reading object permissions through the tenant's role groups (django-guardian).

Each tenant has one Django group per role. When an object is created, every role group of its
tenant receives that role's permissions on it; a membership puts the operator in one group.
A single object can additionally be granted to a single operator.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, cast

from django.contrib.auth.models import Group, Permission
from django.db import models
from guardian.shortcuts import assign_perm, get_objects_for_user
from guardian.utils import get_group_obj_perms_model

from tenants.models import Tenant, TenantRoleGroup
from tenants.roles import OBJECT_PERMS_BY_MODEL, ROLE_ORDER, Role

QS = TypeVar("QS", bound=models.QuerySet[Any])


def ensure_role_groups(tenant: Tenant) -> dict[Role, Group]:
    """The tenant's four role groups, created on first use."""
    existing = {Role(rg.role): rg.group for rg in TenantRoleGroup.objects.filter(tenant=tenant).select_related("group")}
    for role in ROLE_ORDER:
        if role not in existing:
            group, _ = Group.objects.get_or_create(name=f"tenant-{tenant.pk}-{role.value}")
            TenantRoleGroup.objects.get_or_create(tenant=tenant, role=role.value, defaults={"group": group})
            existing[role] = group
    return existing


def _model_key(model: type[models.Model]) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def grant_tenant_roles(tenant: Tenant, objects: Iterable[models.Model]) -> None:
    """Give every role group of `tenant` its role's permissions on each of `objects`, in bulk."""
    objects = list(objects)
    if not objects:
        return
    model = type(objects[0])
    perms_by_role = OBJECT_PERMS_BY_MODEL[_model_key(model)]
    codenames = {code for codes in perms_by_role.values() for code in codes}
    permissions = {
        p.codename: p
        for p in Permission.objects.filter(content_type__app_label=model._meta.app_label, codename__in=codenames)
    }
    groups = ensure_role_groups(tenant)
    perm_model: Any = get_group_obj_perms_model(objects[0])
    rows = [
        perm_model(group=groups[role], permission=permissions[code], content_object=obj)
        for obj in objects
        for role, codes in perms_by_role.items()
        for code in codes
    ]
    perm_model.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)


def grant_object_to_operator(user: Any, codename: str, obj: models.Model) -> None:
    """Grant one permission on one object to one operator (e.g. a contractor who edits one action)."""
    assign_perm(f"{obj._meta.app_label}.{codename}", user, obj)


def objects_with_perm(user: Any, perm: str, queryset: QS) -> QS:
    """The objects of `queryset` on which `user` holds `perm` as an object permission.

    Superusers and global (model-wide) permissions count for nothing here: platform staff are
    not tenant operators, and access to a tenant's objects is only ever granted per object.
    """
    if not user.is_authenticated or not user.is_active:
        return queryset.none()
    scoped = get_objects_for_user(user, perm, klass=queryset, with_superuser=False, accept_global_perms=False)
    return cast(QS, scoped)


def has_object_perm(user: Any, perm: str, obj: models.Model) -> bool:
    queryset = type(obj)._default_manager.filter(pk=obj.pk)
    return objects_with_perm(user, perm, queryset).exists()
