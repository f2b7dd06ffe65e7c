/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* org.hostwarden.Warden1.Error.*: domain errors an operator can act on (DESIGN.md §7). */
#define HW_ERROR_PREFIX            "org.hostwarden.Warden1.Error."
#define HW_ERROR_NO_SUCH_DOMAIN    HW_ERROR_PREFIX "NoSuchDomain"
#define HW_ERROR_NO_SUCH_NODE      HW_ERROR_PREFIX "NoSuchNode"
#define HW_ERROR_NOT_FENCED        HW_ERROR_PREFIX "NotFenced"
#define HW_ERROR_CONSTRAINT        HW_ERROR_PREFIX "ConstraintViolated"
#define HW_ERROR_NODE_DISABLED     HW_ERROR_PREFIX "NodeDisabled"
#define HW_ERROR_ALREADY_EVACUATED HW_ERROR_PREFIX "AlreadyEvacuated"
#define HW_ERROR_BUSY              HW_ERROR_PREFIX "Busy"
#define HW_ERROR_NOT_RUNNING       HW_ERROR_PREFIX "NotRunning"
#define HW_ERROR_LIBVIRT           HW_ERROR_PREFIX "Libvirt"
#define HW_ERROR_CONFIG_INVALID    HW_ERROR_PREFIX "ConfigInvalid"
#define HW_ERROR_FIREWALL          HW_ERROR_PREFIX "Firewall"
#define HW_ERROR_FENCE_FAILED      HW_ERROR_PREFIX "FenceFailed"
#define HW_ERROR_STORE_UNAVAILABLE HW_ERROR_PREFIX "StoreUnavailable"
#define HW_ERROR_NODE_UP           HW_ERROR_PREFIX "NodeUp"
#define HW_ERROR_LIMITS_EXCEEDED   HW_ERROR_PREFIX "LimitsExceeded" /* call-limits.h */

#define HW_BUS_NAME              "org.hostwarden.Warden1"
#define HW_BUS_PATH              "/org/hostwarden/Warden1"
#define HW_NODE_INTERFACE        "org.hostwarden.Warden1.Node"
#define HW_MIGRATION_INTERFACE   "org.hostwarden.Warden1.Migration"
#define HW_MIGRATION_PATH_PREFIX HW_BUS_PATH "/migration"
